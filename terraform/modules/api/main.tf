# The public API: one API Gateway whose config routes every path of the route table to the
# function serving it (openapi.yaml.tftpl is generated from shared/api/routes.py).
#
# CORS: the template enables allowCors, so OPTIONS requests are passed to the OPTIONS
# operations the route table declares for every collection path (answered by ingest); paths
# without one (the management API) still refuse a preflight.
#
# API Gateway buffers responses: the Server-Sent Events route (GET .../events/live) does not
# stream through it. Clients use the events function's own URL for it (root output `live_url`).

locals {
  api_id = "${var.name_prefix}-api"
  # `managed_service` names the API in `host` and `x-google-endpoints` (allowCors: browsers'
  # CORS preflights pass through to the OPTIONS operations, which ingest answers).
  document = templatefile("${path.module}/openapi.yaml.tftpl", merge(
    { for name, url in var.function_urls : "url_${name}" => url },
    { managed_service = google_api_gateway_api.this.managed_service },
  ))
}

resource "google_api_gateway_api" "this" {
  provider = google-beta

  project      = var.project_id
  api_id       = local.api_id
  display_name = "Streams API"
  labels       = var.labels
}

resource "google_api_gateway_api_config" "this" {
  provider = google-beta

  project = var.project_id
  api     = google_api_gateway_api.this.api_id
  # Configs are immutable: a changed document makes a new one, swapped in before the old goes.
  api_config_id_prefix = "${var.name_prefix}-"
  display_name         = "Streams routes ${substr(sha256(local.document), 0, 12)}"
  labels               = var.labels

  openapi_documents {
    document {
      path     = "openapi.yaml"
      contents = base64encode(local.document)
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "google_api_gateway_gateway" "this" {
  provider = google-beta

  project      = var.project_id
  region       = var.region
  gateway_id   = "${var.name_prefix}-gateway"
  display_name = "Streams"
  api_config   = google_api_gateway_api_config.this.id
  labels       = var.labels
}

# The API's managed service must be enabled in the project before the gateway serves it.
resource "google_project_service" "managed_service" {
  provider = google-beta

  project            = var.project_id
  service            = google_api_gateway_api.this.managed_service
  disable_on_destroy = false
}
