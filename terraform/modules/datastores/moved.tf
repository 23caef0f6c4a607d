# Addresses of the indexes and TTL policies before they were chained (one for_each resource
# each): a deployment made before keeps them, instead of deleting and re-creating every one.

moved {
  from = google_firestore_field.ttl["event_log"]
  to   = google_firestore_field.event_log_expires_at
}

moved {
  from = google_firestore_field.ttl["violations"]
  to   = google_firestore_field.violations_expires_at
}

moved {
  from = google_firestore_field.ttl["quarantine"]
  to   = google_firestore_field.quarantine_expires_at
}

moved {
  from = google_firestore_field.ttl["live_events"]
  to   = google_firestore_field.live_events_expires_at
}

moved {
  from = google_firestore_field.ttl["live_sessions"]
  to   = google_firestore_field.live_sessions_expires_at
}

moved {
  from = google_firestore_field.ttl["deliveries"]
  to   = google_firestore_field.deliveries_expires_at
}

moved {
  from = google_firestore_field.ttl["dead_letters"]
  to   = google_firestore_field.dead_letters_expires_at
}

moved {
  from = google_firestore_field.ttl["rate_windows"]
  to   = google_firestore_field.rate_windows_expires_at
}

moved {
  from = google_firestore_index.composite["dead_letters-destination_id"]
  to   = google_firestore_index.dead_letters_by_destination_id
}

moved {
  from = google_firestore_index.composite["dead_letters-reason_code"]
  to   = google_firestore_index.dead_letters_by_reason_code
}

moved {
  from = google_firestore_index.composite["dead_letters-status"]
  to   = google_firestore_index.dead_letters_by_status
}

moved {
  from = google_firestore_index.composite["dead_letters-destination_id-reason_code"]
  to   = google_firestore_index.dead_letters_by_destination_id_reason_code
}

moved {
  from = google_firestore_index.composite["dead_letters-destination_id-status"]
  to   = google_firestore_index.dead_letters_by_destination_id_status
}

moved {
  from = google_firestore_index.composite["dead_letters-reason_code-status"]
  to   = google_firestore_index.dead_letters_by_reason_code_status
}

moved {
  from = google_firestore_index.composite["dead_letters-destination_id-reason_code-status"]
  to   = google_firestore_index.dead_letters_by_destination_id_reason_code_status
}

moved {
  from = google_firestore_index.composite["audit_log-resource_type"]
  to   = google_firestore_index.audit_log_by_resource_type
}

moved {
  from = google_firestore_index.composite["audit_log-resource_id"]
  to   = google_firestore_index.audit_log_by_resource_id
}

moved {
  from = google_firestore_index.composite["audit_log-token_id"]
  to   = google_firestore_index.audit_log_by_token_id
}

moved {
  from = google_firestore_index.composite["audit_log-resource_type-resource_id"]
  to   = google_firestore_index.audit_log_by_resource_type_resource_id
}

moved {
  from = google_firestore_index.composite["audit_log-resource_type-token_id"]
  to   = google_firestore_index.audit_log_by_resource_type_token_id
}

moved {
  from = google_firestore_index.composite["audit_log-resource_id-token_id"]
  to   = google_firestore_index.audit_log_by_resource_id_token_id
}

moved {
  from = google_firestore_index.composite["audit_log-resource_type-resource_id-token_id"]
  to   = google_firestore_index.audit_log_by_resource_type_resource_id_token_id
}

moved {
  from = google_firestore_index.composite["regulations-type"]
  to   = google_firestore_index.regulations_by_type
}

moved {
  from = google_firestore_index.composite["regulations-status"]
  to   = google_firestore_index.regulations_by_status
}

moved {
  from = google_firestore_index.composite["regulations-type-status"]
  to   = google_firestore_index.regulations_by_type_status
}

moved {
  from = google_firestore_index.composite["quarantine-status"]
  to   = google_firestore_index.quarantine_by_status
}

moved {
  from = google_firestore_index.composite["deliveries-destination"]
  to   = google_firestore_index.deliveries_by_destination_id
}

moved {
  from = google_firestore_index.composite["violations-workspace"]
  to   = google_firestore_index.violations_by_workspace_id
}
