# One Streams function: its own service account, its source zip (named by content hash) and the
# Cloud Functions gen2 function serving `functions/<name>/main.py` with entry point `<name>`.

locals {
  function_name = "${var.name_prefix}-${replace(var.name, "_", "-")}"
  # Service account ids are at most 30 characters.
  account_id = trimsuffix(substr(local.function_name, 0, 30), "-")
  member     = "serviceAccount:${google_service_account.this.email}"

  # The zip: main.py at its root (Cloud Functions imports it from there), the `shared` package
  # beside it, and requirements.txt. Packaging straight from the repository needs no build step.
  main_file    = "${var.source_root}/functions/${var.name}/main.py"
  shared_files = sort(fileset(var.source_root, "shared/**/*.{py,json}"))
  # Built files a function serves (the console's console/dist), at the same path as in the
  # repository. Text only: they go through file().
  asset_files = sort(distinct(flatten([for pattern in var.asset_patterns : fileset(var.source_root, pattern)])))
  # A hash of every file's content (not of the zip, whose bytes may vary): a code change gives a
  # new object name, and so a new build and revision; no change redeploys nothing.
  source_hash = substr(sha256(join("\n", concat(
    ["main.py ${filesha256(local.main_file)}", "requirements.txt ${sha256(var.requirements)}"],
    [for path in local.shared_files : "${path} ${filesha256("${var.source_root}/${path}")}"],
    [for path in local.asset_files : "${path} ${filesha256("${var.source_root}/${path}")}"],
  ))), 0, 16)

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

data "archive_file" "source" {
  type        = "zip"
  output_path = "${path.root}/.build/${var.name}-${local.source_hash}.zip"

  source {
    content  = file(local.main_file)
    filename = "main.py"
  }

  source {
    content  = var.requirements
    filename = "requirements.txt"
  }

  dynamic "source" {
    for_each = local.shared_files
    content {
      content  = file("${var.source_root}/${source.value}")
      filename = source.value
    }
  }

  dynamic "source" {
    for_each = local.asset_files
    content {
      content  = file("${var.source_root}/${source.value}")
      filename = source.value
    }
  }
}

resource "google_storage_bucket_object" "source" {
  bucket = var.source_bucket
  name   = "functions/${var.name}-${local.source_hash}.zip"
  source = data.archive_file.source.output_path

  lifecycle {
    create_before_destroy = true
  }
}

resource "google_cloudfunctions2_function" "this" {
  project     = var.project_id
  location    = var.region
  name        = local.function_name
  description = "Streams: functions/${var.name}/main.py"
  labels      = var.labels

  build_config {
    runtime         = var.runtime
    entry_point     = var.name
    service_account = var.build_service_account

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
    # Pub/Sub push counts as internal traffic; HTTP functions are reached through the gateway
    # or, for Server-Sent Events, directly.
    ingress_settings               = var.public ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    vpc_connector                  = try(var.vpc_connector.connector, null)
    vpc_connector_egress_settings  = try(var.vpc_connector.egress_settings, null)
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

  # The identity must hold its roles before the first instance starts serving.
  depends_on = [google_project_iam_member.roles, google_secret_manager_secret_iam_member.access]
}

resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = var.public ? { public = "allUsers" } : var.invokers

  project  = var.project_id
  location = var.region
  # A gen2 function is served by the Cloud Run service of the same name.
  name   = google_cloudfunctions2_function.this.name
  role   = "roles/run.invoker"
  member = each.value
}
