# The public front end: one global external Application Load Balancer on the customer's own
# domain, with a serverless network endpoint group and a backend service per HTTP function.
#
# The URL map is generated from the route table (routes.json, written by `streams edge-config`;
# a unit test fails when it is stale): each path goes to the function serving it locally, so
# browsers' CORS preflights reach ingest, which answers them, and Server-Sent Events stream
# through (the load balancer does not buffer responses). Cloud Armor limits ingest.

locals {
  route_rules = jsondecode(file("${path.module}/routes.json")).route_rules
  # A certificate is immutable: a change of domains makes a new one, swapped in before the old
  # one goes (create_before_destroy), so HTTPS never stops.
  certificate_name = "${var.name_prefix}-edge-${substr(sha256(join(",", var.domains)), 0, 8)}"
}

resource "google_compute_global_address" "this" {
  project = var.project_id
  name    = "${var.name_prefix}-edge"
}

resource "google_compute_managed_ssl_certificate" "this" {
  project = var.project_id
  name    = local.certificate_name

  managed {
    domains = var.domains
  }

  lifecycle {
    create_before_destroy = true
  }
}

# --- one backend per HTTP function ----------------------------------------------------------

resource "google_compute_region_network_endpoint_group" "functions" {
  for_each = var.functions

  project               = var.project_id
  region                = var.region
  name                  = "${var.name_prefix}-${replace(each.key, "_", "-")}"
  network_endpoint_type = "SERVERLESS"

  # A gen2 function is served by the Cloud Run service of the same name.
  cloud_run {
    service = each.value
  }
}

resource "google_compute_backend_service" "functions" {
  for_each = var.functions

  project               = var.project_id
  name                  = "${var.name_prefix}-${replace(each.key, "_", "-")}"
  description           = "Streams ${each.key} function (functions/${each.key}/main.py)."
  load_balancing_scheme = "EXTERNAL_MANAGED"
  protocol              = "HTTPS"
  # No timeout_sec: a serverless backend's timeout is its Cloud Run service's (330 s for the
  # events function, whose live streams last 300 s).
  security_policy = each.key == "ingest" && var.ingest.enabled ? google_compute_security_policy.ingest[0].id : null

  backend {
    group = google_compute_region_network_endpoint_group.functions[each.key].id
  }

  log_config {
    enable = true
    # Ingest answers most of the requests; a sample of its request logs keeps their cost small
    # at a billion events (docs/COST.md). The management API's are all kept.
    sample_rate = each.key == "ingest" ? var.ingest.log_sample_rate : 1.0
  }

  lifecycle {
    precondition {
      condition     = alltrue([for rule in local.route_rules : contains(keys(var.functions), rule.function)])
      error_message = "routes.json names a function that is not deployed as an HTTP function: ${join(", ", setsubtract([for rule in local.route_rules : rule.function], keys(var.functions)))}."
    }
  }
}

# --- routing --------------------------------------------------------------------------------

resource "google_compute_url_map" "https" {
  project     = var.project_id
  name        = "${var.name_prefix}-edge"
  description = "Streams: every path of the route table to its function (routes.json)."
  # A path no route has is answered by api_docs, whose router answers a JSON 404 like any
  # function's.
  default_service = google_compute_backend_service.functions["api_docs"].id

  host_rule {
    hosts        = var.domains
    path_matcher = "routes"
  }

  path_matcher {
    name            = "routes"
    default_service = google_compute_backend_service.functions["api_docs"].id

    dynamic "route_rules" {
      for_each = local.route_rules
      content {
        priority = route_rules.value.priority
        service  = google_compute_backend_service.functions[route_rules.value.function].id

        match_rules {
          full_path_match     = try(route_rules.value.full_path_match, null)
          path_template_match = try(route_rules.value.path_template_match, null)
        }
      }
    }
  }
}

resource "google_compute_ssl_policy" "modern" {
  project         = var.project_id
  name            = "${var.name_prefix}-edge"
  description     = "TLS 1.2 or newer with modern ciphers only."
  profile         = "MODERN"
  min_tls_version = "TLS_1_2"
}

resource "google_compute_target_https_proxy" "this" {
  project          = var.project_id
  name             = "${var.name_prefix}-edge"
  url_map          = google_compute_url_map.https.id
  ssl_certificates = [google_compute_managed_ssl_certificate.this.id]
  ssl_policy       = google_compute_ssl_policy.modern.id
}

resource "google_compute_global_forwarding_rule" "https" {
  project               = var.project_id
  name                  = "${var.name_prefix}-edge-https"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_address            = google_compute_global_address.this.id
  port_range            = "443"
  target                = google_compute_target_https_proxy.this.id
  labels                = var.labels
}

# Plain HTTP only redirects to HTTPS (the same host and path): no event is accepted unencrypted.
resource "google_compute_url_map" "http_redirect" {
  project     = var.project_id
  name        = "${var.name_prefix}-edge-http"
  description = "Streams: every plain HTTP request to its HTTPS URL."

  default_url_redirect {
    https_redirect         = true
    redirect_response_code = "PERMANENT_REDIRECT" # 308: a POST stays a POST
    strip_query            = false
  }
}

resource "google_compute_target_http_proxy" "redirect" {
  project = var.project_id
  name    = "${var.name_prefix}-edge-http"
  url_map = google_compute_url_map.http_redirect.id
}

resource "google_compute_global_forwarding_rule" "http" {
  project               = var.project_id
  name                  = "${var.name_prefix}-edge-http"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_address            = google_compute_global_address.this.id
  port_range            = "80"
  target                = google_compute_target_http_proxy.redirect.id
  labels                = var.labels
}

# --- Cloud Armor on ingest ------------------------------------------------------------------

module "body_limit" {
  source    = "./body_limit"
  max_bytes = var.ingest.max_body_bytes
}

# Rules are tried by priority and the first that matches decides; a throttle rule that a
# request conforms to lets it through without trying the next. So each request meets exactly
# one rate limit: the write key's when it sends one in a header (HTTP Basic, as the Segment and
# RudderStack SDKs do, or X-Write-Key), otherwise its address's (analytics.js puts the key in
# the body, webhooks in the path). Over a limit, Cloud Armor answers 429, which every SDK
# retries with backoff; Cloud Armor cannot add a Retry-After header to its own answers.
resource "google_compute_security_policy" "ingest" {
  count = var.ingest.enabled ? 1 : 0

  project     = var.project_id
  name        = "${var.name_prefix}-ingest"
  description = "Streams ingest: body size, per-write-key and per-address request rates."
  type        = "CLOUD_ARMOR"

  # Log4Shell probes (a JNDI lookup in a header or the body) never reach the function.
  rule {
    priority    = 900
    action      = "deny(403)"
    description = "Log4j JNDI lookups (CVE-2021-44228), Google's preconfigured expression."
    match {
      expr {
        expression = "evaluatePreconfiguredExpr('cve-canary')"
      }
    }
  }

  # Bodies above the limit are refused before they reach ingest, which refuses more than 500 KB
  # itself. 403 because Cloud Armor denies with 403, 404, 429 or 502 only; SDKs do not retry it.
  rule {
    priority    = 1000
    action      = "deny(403)"
    description = "Request bodies above ${var.ingest.max_body_bytes} bytes (Content-Length)."
    match {
      expr {
        expression = "request.headers['content-length'].matches('${module.body_limit.pattern}')"
      }
    }
  }

  rule {
    priority    = 2000
    action      = "throttle"
    description = "Per write key sent as HTTP Basic (Segment and RudderStack SDKs)."
    match {
      expr {
        expression = "has(request.headers['authorization'])"
      }
    }
    rate_limit_options {
      conform_action      = "allow"
      exceed_action       = "deny(429)"
      enforce_on_key      = "HTTP_HEADER"
      enforce_on_key_name = "Authorization"
      rate_limit_threshold {
        count        = var.ingest.requests_per_minute_per_write_key
        interval_sec = 60
      }
    }
  }

  rule {
    priority    = 2001
    action      = "throttle"
    description = "Per write key sent as X-Write-Key."
    match {
      expr {
        expression = "has(request.headers['x-write-key'])"
      }
    }
    rate_limit_options {
      conform_action      = "allow"
      exceed_action       = "deny(429)"
      enforce_on_key      = "HTTP_HEADER"
      enforce_on_key_name = "X-Write-Key"
      rate_limit_threshold {
        count        = var.ingest.requests_per_minute_per_write_key
        interval_sec = 60
      }
    }
  }

  rule {
    priority    = 3000
    action      = "throttle"
    description = "Per client address, for requests without a write key header."
    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = ["*"]
      }
    }
    rate_limit_options {
      conform_action = "allow"
      exceed_action  = "deny(429)"
      enforce_on_key = "IP"
      rate_limit_threshold {
        count        = var.ingest.requests_per_minute_per_ip
        interval_sec = 60
      }
    }
  }

  rule {
    priority    = 2147483647
    action      = "allow"
    description = "Default: allow (the throttle above matches every request first)."
    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = ["*"]
      }
    }
  }
}
