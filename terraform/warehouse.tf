# The warehouse's hourly sync (docs/DEPLOY.md, "Warehouse"): Cloud Scheduler calls the private
# warehouse function's POST /internal/warehouse/sync as an identity of its own, the only one the
# function lets in (module.internal_functions' invokers). What a sync may do in BigQuery is
# granted to the function, not to this identity (modules/datastores, warehouse_syncers).

locals {
  warehouse_uri = module.internal_functions["warehouse"].uri
}

# Holds no role: it may only invoke the warehouse function, with an ID token Cloud Scheduler
# mints for each run (Cloud Scheduler's service agent may, by its own role since the API is
# enabled).
resource "google_service_account" "warehouse_scheduler" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-warehouse-cron"
  display_name = "Streams warehouse sync schedule"
  description  = "Identity of the Cloud Scheduler job that calls the private warehouse function; invoker of that function only."

  depends_on = [time_sleep.apis_ready]
}

resource "google_cloud_scheduler_job" "warehouse_sync" {
  project     = var.project_id
  region      = var.region
  name        = "${var.name_prefix}-warehouse-sync"
  description = "Sync every workspace's warehouse views (POST /internal/warehouse/sync on the warehouse function)."
  schedule    = var.warehouse_sync_schedule
  time_zone   = "Etc/UTC"
  # Cloud Scheduler waits at most 30 minutes for an HTTP target: as long as the function may run.
  attempt_deadline = "${min(local.sizes.warehouse.timeout_seconds, 1800)}s"

  # No retry: a sync is idempotent (it rewrites the views from what it observes), and the next
  # run is at most one schedule period away.
  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    uri         = "${local.warehouse_uri}/internal/warehouse/sync"

    # Cloud Run checks the token's signature, its audience (the service's URL) and that its
    # account may invoke the function.
    oidc_token {
      service_account_email = google_service_account.warehouse_scheduler.email
      audience              = local.warehouse_uri
    }
  }

  depends_on = [time_sleep.apis_ready]
}
