output "firestore_database" {
  description = "Name of the Firestore database the functions use ((default))."
  value       = local.database
}

output "bigquery_dataset" {
  description = "The BigQuery dataset id (STREAMS_BIGQUERY_DATASET)."
  value       = google_bigquery_dataset.this.dataset_id
}

output "bigquery_tables" {
  description = "Full ids of the BigQuery tables, by table name."
  value       = { for name, table in google_bigquery_table.tables : name => table.id }
}

output "recovery" {
  description = "What this module set up to recover data: whether Firestore keeps 7 days of versions (null: a database it did not create, whose own setting applies), the daily backup schedule's id (null: none) and BigQuery's time-travel window in hours."
  value = {
    firestore_point_in_time_recovery = var.firestore.create_database ? var.recovery.firestore_point_in_time_recovery : null
    firestore_backup_schedule        = one(google_firestore_backup_schedule.daily[*].id)
    bigquery_time_travel_hours       = var.recovery.bigquery_time_travel_hours
  }
}
