# One Streams function: its own service account, its source zip (named by content hash) and the
# Cloud Functions gen2 function serving `functions/<name>/main.py` with entry point `<name>`.

locals {
  function_name = "${var.name_prefix}-${replace(var.name, "_", "-")}"
  # Service account ids are at most 30 characters.
  account_id = trimsuffix(substr(local.function_name, 0, 30), "-")
  member     = "serviceAccount:${google_service_account.this.email}"

  secrets = toset([for entry in values(var.secret_environment) : entry.secret])
}

resource "google_service_account" "this" {
  project      = var.project_id
  account_id   = local.account_id
  display_name = "Streams ${var.name} function"
  description  = "Runtime identity of the ${local.function_name} function (least privilege, one per function)."
}

resource "google_project_iam_member" "roles" {
  for_each = var.project_roles

  project = var.project_id
  role    = each.value
  member  = local.member
}

resource "google_secret_manager_secret_iam_member" "access" {
  for_each = local.secrets

  project   = var.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = local.member
}

# The zip `make package` built (package.tf checks it), named by the hash of its manifest.
resource "google_storage_bucket_object" "source" {
  bucket       = var.source_bucket
  name         = "functions/${var.name}-${local.source_hash}.zip"
  source       = local.source_zip
  content_type = "application/zip"

  lifecycle {
    create_before_destroy = true
  }

  # Planned only once the zip passed its checks: a missing zip fails with their message (what
  # to run), not with the provider's unreadable source file.
  depends_on = [terraform_data.source_package]
}

resource "google_cloudfunctions2_function" "this" {
  #checkov:skip=CKV_GCP_124:Open ingress only where var.ingress_settings asks for it: the private wiring and warehouse functions, whose IAM invokers keep everyone else out (Cloud Run counts a call from another function as internal only through a VPC), and with edge "direct" the public HTTP functions, which have no load balancer in front and authenticate callers themselves
  project     = var.project_id
  location    = var.region
  name        = local.function_name
  description = "Streams: functions/${var.name}/main.py"
  labels      = var.labels

  build_config {
    runtime           = var.runtime
    entry_point       = var.name
    service_account   = var.build_service_account
    docker_repository = var.docker_repository

    source {
      storage_source {
        bucket = var.source_bucket
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = var.size.memory
    available_cpu                    = var.size.cpu
    max_instance_request_concurrency = var.size.concurrency
    timeout_seconds                  = var.size.timeout_seconds
    min_instance_count               = var.size.min_instances
    max_instance_count               = var.size.max_instances
    service_account_email            = google_service_account.this.email
    # Pub/Sub push counts as internal traffic; public HTTP functions are reached through the
    # load balancer only (their run.app URLs refuse every other caller) unless the caller sets
    # ingress_settings (edge "direct": ALLOW_ALL).
    ingress_settings               = coalesce(var.ingress_settings, var.public ? "ALLOW_INTERNAL_AND_GCLB" : "ALLOW_INTERNAL_ONLY")
    all_traffic_on_latest_revision = true
    vpc_connector                  = try(var.vpc_connector.connector, null)
    vpc_connector_egress_settings  = try(var.vpc_connector.egress_settings, null)
    # Direct VPC egress: the instances take addresses in the subnetwork themselves, with no
    # connector VMs to pay for (the way to the deduplication store's Memorystore instance).
    direct_vpc_egress = var.direct_vpc == null ? null : "VPC_EGRESS_${var.direct_vpc.egress}"

    dynamic "direct_vpc_network_interface" {
      for_each = var.direct_vpc == null ? [] : [var.direct_vpc]
      content {
        network    = direct_vpc_network_interface.value.network
        subnetwork = direct_vpc_network_interface.value.subnetwork
      }
    }
    # One gunicorn thread per request Cloud Run may send: a request that waits (Pub/Sub's
    # acknowledgement, a destination, a live stream) never queues another behind it.
    environment_variables = merge(var.environment, { THREADS = tostring(var.size.concurrency) })

    dynamic "secret_environment_variables" {
      for_each = var.secret_environment
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value.secret
        version    = secret_environment_variables.value.version
      }
    }
  }

  lifecycle {
    precondition {
      # Cloud Run refuses a revision with both ways into a VPC.
      condition     = var.vpc_connector == null || var.direct_vpc == null
      error_message = "${local.function_name}: a function has either a Serverless VPC Access connector (vpc_connector) or Direct VPC egress (direct_vpc), not both."
    }
  }

  # The identity must hold its roles before the first instance starts serving.
  depends_on = [google_project_iam_member.roles, google_secret_manager_secret_iam_member.access]
}

resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = var.public ? (var.public_access == "all_users" ? { public = "allUsers" } : {}) : var.invokers

  project  = var.project_id
  location = var.region
  # A gen2 function is served by the Cloud Run service of the same name.
  name   = google_cloudfunctions2_function.this.name
  role   = "roles/run.invoker"
  member = each.value
}

# The other way in for callers without a Google identity: Cloud Run's invoker check turned off,
# which needs no allUsers binding (Google's advice where domain-restricted sharing forbids one).
# Cloud Functions' API cannot set it, so Terraform asks gcloud, after every deploy of the
# function (a new revision keeps the service's setting, but a re-created service would not).
resource "terraform_data" "no_invoker_check" {
  count = var.public && var.public_access == "no_invoker_check" ? 1 : 0

  triggers_replace = [google_cloudfunctions2_function.this.id]

  provisioner "local-exec" {
    command = "gcloud run services update ${google_cloudfunctions2_function.this.name} --no-invoker-iam-check --region ${var.region} --project ${var.project_id} --quiet"
  }
}
