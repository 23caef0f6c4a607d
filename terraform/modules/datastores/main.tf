# Firestore (configuration and operational state) and BigQuery (the events table), with what
# recovers them: Firestore point-in-time recovery and daily backups, BigQuery time travel.
# The composite indexes and TTL policies defined below are created one at a time
# (firestore_indexes.tf).

locals {
  database = var.firestore.create_database ? google_firestore_database.this[0].name : "(default)"

  # Composite indexes of the queries in shared/services (single-field indexes, which Firestore
  # keeps by default, serve the others: trace's message_id ==, contracts' status ==, the live
  # feed's and violations' range-and-order on one field).
  #   dead_letters.py DeadLetters.list: any of destination_id / reason_code / status ==,
  #     updated_at range, order by updated_at desc -> every combination of the equalities.
  #   quarantine.py Quarantine._select: status ==, sort_key range, order by sort_key desc.
  #   audit.py AuditLog.list: any of resource_type / resource_id / token_id ==, sort_key range,
  #     order by sort_key desc -> every combination of the equalities.
  #   regulations.py Regulations.list: any of type / status ==, order by created_at desc.
  dead_letter_filters = [
    ["destination_id"],
    ["reason_code"],
    ["status"],
    ["destination_id", "reason_code"],
    ["destination_id", "status"],
    ["reason_code", "status"],
    ["destination_id", "reason_code", "status"],
  ]
  audit_filters = [
    ["resource_type"],
    ["resource_id"],
    ["token_id"],
    ["resource_type", "resource_id"],
    ["resource_type", "token_id"],
    ["resource_id", "token_id"],
    ["resource_type", "resource_id", "token_id"],
  ]
  regulation_filters = [["type"], ["status"], ["type", "status"]]
  composite_indexes = merge(
    {
      for equalities in local.dead_letter_filters : "dead_letters_by_${join("_", equalities)}" => {
        collection  = "dead_letters"
        query_scope = "COLLECTION"
        fields = concat(
          [for field in equalities : { field_path = field, order = "ASCENDING" }],
          [{ field_path = "updated_at", order = "DESCENDING" }],
        )
      }
    },
    {
      for equalities in local.audit_filters : "audit_log_by_${join("_", equalities)}" => {
        collection  = "audit_log"
        query_scope = "COLLECTION"
        fields = concat(
          [for field in equalities : { field_path = field, order = "ASCENDING" }],
          [{ field_path = "sort_key", order = "DESCENDING" }],
        )
      }
    },
    {
      for equalities in local.regulation_filters : "regulations_by_${join("_", equalities)}" => {
        collection  = "regulations"
        query_scope = "COLLECTION"
        fields = concat(
          [for field in equalities : { field_path = field, order = "ASCENDING" }],
          [{ field_path = "created_at", order = "DESCENDING" }],
        )
      }
    },
    {
      quarantine_by_status = {
        collection  = "quarantine"
        query_scope = "COLLECTION"
        fields = [
          { field_path = "status", order = "ASCENDING" },
          { field_path = "sort_key", order = "DESCENDING" },
        ]
      }
    },
    {
      # The per-delivery records deliver wrote before delivery_batches: nothing queries them
      # any more; they expire by their TTL policy.
      deliveries_by_destination_id = {
        collection  = "deliveries"
        query_scope = "COLLECTION"
        fields = [
          { field_path = "destination_id", order = "ASCENDING" },
          { field_path = "updated_at", order = "DESCENDING" },
        ]
      }
    },
    {
      # delivery_records.py recent_deliveries (Destinations.recent_deliveries): deliver's
      # records, one per deliveries-topic message, destination_id ==, order by updated_at desc.
      delivery_batches_by_destination_id = {
        collection  = "delivery_batches"
        query_scope = "COLLECTION"
        fields = [
          { field_path = "destination_id", order = "ASCENDING" },
          { field_path = "updated_at", order = "DESCENDING" },
        ]
      }
    },
    {
      # contracts.py EventContracts.violation_counts: every contract's violations at once.
      violations_by_workspace_id = {
        collection  = "violations"
        query_scope = "COLLECTION_GROUP"
        fields = [
          { field_path = "workspace_id", order = "ASCENDING" },
          { field_path = "sort_key", order = "DESCENDING" },
        ]
      }
    },
  )

  # Collections whose documents carry `expires_at` (a timestamp) and expire by TTL policy.
  # `indexed` keeps the field's single-field indexes where a query filters on it (the live
  # feed's garbage collection and session check); elsewhere they are dropped: nothing queries
  # them, and an index on an ever-increasing timestamp only adds write cost and hotspots.
  ttl_field = "expires_at"
  ttl_collections = {
    event_log        = { indexed = false } # process: a record per source message, 48 h
    event_claims     = { indexed = false } # process: a dedup claim per event (dedup_store "firestore"), 48 h
    violations       = { indexed = false } # contract violations, 30 days
    quarantine       = { indexed = false } # blocked events, 30 days
    live_events      = { indexed = true }  # the live stream's buffer, 1 h
    live_sessions    = { indexed = true }  # open live streams, 60 s after the last refresh
    deliveries       = { indexed = false } # per-delivery records of before delivery_batches, 30 days
    delivery_batches = { indexed = false } # deliver's record per message, 30 days after its last attempt
    dead_letters     = { indexed = true }  # dead letters, 30 days after the last change
    rate_windows     = { indexed = false } # ingest's shared rate-limit counters, 1 h after their window
  }

  # Map fields holding a record's many entries, which no query reads into: their single-field
  # indexes are turned off. Firestore would index every value of every entry (an event log
  # record holds up to 200 events of about 15 fields each), adding write latency and index
  # storage and nearing its 40,000 index entries per document, for nothing.
  unindexed_maps = {
    event_log        = "events"     # process's record per source message: an entry per event
    delivery_batches = "deliveries" # deliver's record per deliveries message: one per delivery
  }
}

resource "google_firestore_database" "this" {
  count = var.firestore.create_database ? 1 : 0

  project                 = var.project_id
  name                    = "(default)"
  location_id             = var.firestore.location_id
  type                    = "FIRESTORE_NATIVE"
  delete_protection_state = var.firestore.delete_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  # Seven days of versions instead of one hour: any document can be read, exported or cloned as
  # it was at any minute of the past week (docs/DEPLOY.md, "Data safety and recovery"). A
  # database this module does not create keeps its own setting: enable it there with
  # `gcloud firestore databases update --database='(default)' --enable-pitr`.
  point_in_time_recovery_enablement = var.recovery.firestore_point_in_time_recovery ? "POINT_IN_TIME_RECOVERY_ENABLED" : "POINT_IN_TIME_RECOVERY_DISABLED"
  # `terraform destroy` leaves the data in place unless protection is off and this is changed.
  deletion_policy = "ABANDON"
}

# A daily backup of the whole database, kept `firestore_backup_retention_days` (Firestore keeps
# daily backups at most 7 days). Backups outlive the database they were taken from, so a
# deleted database can be restored; a restore writes a new database (docs/DEPLOY.md). Made on
# "(default)" whether or not this module created it; a retention of 0 makes none, for a project
# that already has a daily schedule (a database takes only one).
resource "google_firestore_backup_schedule" "daily" {
  count = var.recovery.firestore_backup_retention_days > 0 ? 1 : 0

  project   = var.project_id
  database  = local.database
  retention = "${var.recovery.firestore_backup_retention_days * 86400}s"

  daily_recurrence {}
}

resource "google_bigquery_dataset" "this" {
  project     = var.project_id
  dataset_id  = var.bigquery.dataset_id
  location    = var.bigquery.location
  description = "Streams: stored events (schemas in shared/schemas/bigquery/)."
  labels      = var.labels
  # Time travel: every table of the dataset can be read, copied or cloned as it was at any
  # moment of this window, and a deleted table restored within it (docs/DEPLOY.md, "Data safety
  # and recovery": `CREATE TABLE ... CLONE ... FOR SYSTEM_TIME AS OF`, `bq cp table@<ms>`).
  # BigQuery's fail-safe keeps 7 days more, recoverable only through Google support. Table
  # snapshots would keep longer, but need scheduled queries (another API and identity); the
  # events themselves are kept as long as partition_expiration_days allows.
  max_time_travel_hours = tostring(var.recovery.bigquery_time_travel_hours)
}

resource "google_bigquery_table" "tables" {
  #checkov:skip=CKV_GCP_121:deletion_protection is var.bigquery.deletion_protection, true unless the operator turns it off; checkov cannot read the variable
  for_each = var.bigquery.tables

  project             = var.project_id
  dataset_id          = google_bigquery_dataset.this.dataset_id
  table_id            = each.key
  labels              = var.labels
  deletion_protection = var.bigquery.deletion_protection
  # The very file the code creates the table from locally (shared/adapters/bigquery.py).
  schema = jsonencode(jsondecode(file(each.value.schema_file)))

  # partition_expiration_days is the deployment-wide ceiling on an event's age: each day's
  # partition is dropped that many days after its day. A workspace's shorter retention (its
  # warehouse settings' retention_days) is enforced by the warehouse sync's DELETE.
  time_partitioning {
    type          = "DAY"
    field         = each.value.partition_field
    expiration_ms = var.bigquery.partition_expiration_days == null ? null : var.bigquery.partition_expiration_days * 86400000
  }

  clustering = length(each.value.clustering) > 0 ? each.value.clustering : null
}

resource "google_bigquery_dataset_iam_member" "readers" {
  for_each = var.bigquery_readers

  project    = var.project_id
  dataset_id = google_bigquery_dataset.this.dataset_id
  role       = "roles/bigquery.dataViewer"
  member     = each.value
}

resource "google_bigquery_dataset_iam_member" "writers" {
  for_each = var.bigquery_writers

  project    = var.project_id
  dataset_id = google_bigquery_dataset.this.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = each.value
}

# --- the warehouse: per-workspace datasets of views over `events` ---------------------------
#
# A warehouse sync (shared/adapters/bigquery_warehouse.py, run by the private warehouse function
# every hour and by the events function on demand) creates the dataset `<dataset>_ws_<workspace>`,
# writes its views over `events`, authorises that dataset's views on this dataset (an access
# entry of kind dataset), and deletes the workspace's events older than its retention. Each
# syncer also holds roles/bigquery.jobUser on the project and dataViewer on this dataset (the
# root module's bigquery_read), for the queries themselves and the rows the views read. The
# grants below are the rest, each as narrow as BigQuery allows.

locals {
  # The code's name for a workspace's dataset (shared/bootstrap.py): "<dataset>_ws_" + its id.
  warehouse_dataset_prefix = "${var.bigquery.dataset_id}_ws_"
}

# Creating a dataset is a project permission. Only bigquery.datasets.create: roles/bigquery.user
# would add listing every dataset, table and job, read sessions and more. BigQuery makes the
# creator the OWNER of what it creates.
resource "google_project_iam_custom_role" "warehouse_datasets" {
  project     = var.project_id
  role_id     = "${replace(var.name_prefix, "-", "_")}_warehouse_datasets"
  title       = "Streams warehouse datasets"
  description = "Create the per-workspace warehouse datasets (${local.warehouse_dataset_prefix}<workspace>)."
  permissions = ["bigquery.datasets.create"]
}

resource "google_project_iam_member" "warehouse_creates_datasets" {
  for_each = var.warehouse_syncers

  project = var.project_id
  role    = google_project_iam_custom_role.warehouse_datasets.name
  member  = each.value
}

# Either syncer may sync a workspace whose dataset the other created (and so owns): each may
# write the views of every workspace dataset, and of nothing else (an IAM condition on the
# dataset name, which also covers datasets not created yet).
resource "google_project_iam_member" "warehouse_writes_views" {
  for_each = var.warehouse_syncers

  project = var.project_id
  role    = "roles/bigquery.dataEditor"
  member  = each.value

  condition {
    title       = "Streams warehouse datasets"
    description = "Only the per-workspace warehouse datasets and their views."
    expression  = "resource.name.startsWith(\"projects/${var.project_id}/datasets/${local.warehouse_dataset_prefix}\")"
  }
}

# Authorising a workspace dataset's views is an update of this dataset's access list, and BigQuery
# also asks for it to create or replace a view in a dataset so authorised: datasets.get and
# datasets.update on this dataset alone (a custom role in the dataset's own access list). Less
# than roles/bigquery.dataOwner (no table or routine deletes, no IAM policy calls), though an
# identity that may rewrite the access list could give itself more on this dataset: the reason
# only the two syncing functions hold it.
resource "google_project_iam_custom_role" "warehouse_authorise" {
  project     = var.project_id
  role_id     = "${replace(var.name_prefix, "-", "_")}_warehouse_authorise"
  title       = "Streams warehouse authorisation"
  description = "Add the per-workspace warehouse datasets to the events dataset's access list (authorised datasets)."
  permissions = ["bigquery.datasets.get", "bigquery.datasets.update"]
}

# google_bigquery_dataset_iam_member keeps the access list's dataset, view and routine entries
# when it writes (google provider 6.6 and later), so neither these grants nor the readers' and
# writers' above remove the entries the syncs add at run time; this dataset has no `access`
# blocks, which Terraform would enforce, for the same reason.
resource "google_bigquery_dataset_iam_member" "warehouse_authorises" {
  for_each = var.warehouse_syncers

  project    = var.project_id
  dataset_id = google_bigquery_dataset.this.dataset_id
  role       = google_project_iam_custom_role.warehouse_authorise.name
  member     = each.value
}

# A workspace's retention is a DML DELETE on the events table (bigquery.tables.updateData): on
# that table only, not the dataset (no creating or deleting tables).
resource "google_bigquery_table_iam_member" "warehouse_expires_events" {
  for_each = var.warehouse_syncers

  project    = var.project_id
  dataset_id = google_bigquery_dataset.this.dataset_id
  table_id   = google_bigquery_table.tables[var.warehouse_table].table_id
  role       = "roles/bigquery.dataEditor"
  member     = each.value
}
