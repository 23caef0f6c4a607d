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
