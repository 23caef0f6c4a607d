# Firestore's composite indexes and TTL policies (defined in main.tf's locals), created one at
# a time: Firestore refuses concurrent index and field operations on one database (409 "too much
# contention", "underlying data changed"), and Terraform would start up to ten at once.
#
# Each resource depends on the one before it, so there is a resource block per index: a count
# or for_each resource cannot order its own instances, a time_sleep only spaces out their
# starts (a build can outlast any delay), and a fixed list of numbered slots would re-create
# every index after an insertion. Each block waits for the previous operation to finish, as the
# provider waits for every index build. tests/unit/test_terraform_datastores.py checks that the
# blocks form one chain holding every index and TTL collection of the locals.
#
# A TTL field's empty index_config turns its single-field indexes off (where
# local.ttl_collections says nothing queries it). To add an index: add it to
# local.composite_indexes, add a block here named by its key, and make it depend on the last
# block of the chain.

resource "google_firestore_field" "event_log_expires_at" {
  project    = var.project_id
  database   = local.database
  collection = "event_log"
  field      = local.ttl_field

  ttl_config {}

  dynamic "index_config" {
    for_each = local.ttl_collections.event_log.indexed ? [] : [true]
    content {}
  }
}

resource "google_firestore_field" "violations_expires_at" {
  project    = var.project_id
  database   = local.database
  collection = "violations"
  field      = local.ttl_field

  ttl_config {}

  dynamic "index_config" {
    for_each = local.ttl_collections.violations.indexed ? [] : [true]
    content {}
  }

  depends_on = [google_firestore_field.event_log_expires_at]
}

resource "google_firestore_field" "quarantine_expires_at" {
  project    = var.project_id
  database   = local.database
  collection = "quarantine"
  field      = local.ttl_field

  ttl_config {}

  dynamic "index_config" {
    for_each = local.ttl_collections.quarantine.indexed ? [] : [true]
    content {}
  }

  depends_on = [google_firestore_field.violations_expires_at]
}

resource "google_firestore_field" "live_events_expires_at" {
  project    = var.project_id
  database   = local.database
  collection = "live_events"
  field      = local.ttl_field

  ttl_config {}

  dynamic "index_config" {
    for_each = local.ttl_collections.live_events.indexed ? [] : [true]
    content {}
  }

  depends_on = [google_firestore_field.quarantine_expires_at]
}

resource "google_firestore_field" "live_sessions_expires_at" {
  project    = var.project_id
  database   = local.database
  collection = "live_sessions"
  field      = local.ttl_field

  ttl_config {}

  dynamic "index_config" {
    for_each = local.ttl_collections.live_sessions.indexed ? [] : [true]
    content {}
  }

  depends_on = [google_firestore_field.live_events_expires_at]
}

resource "google_firestore_field" "deliveries_expires_at" {
  project    = var.project_id
  database   = local.database
  collection = "deliveries"
  field      = local.ttl_field

  ttl_config {}

  dynamic "index_config" {
    for_each = local.ttl_collections.deliveries.indexed ? [] : [true]
    content {}
  }

  depends_on = [google_firestore_field.live_sessions_expires_at]
}

resource "google_firestore_field" "dead_letters_expires_at" {
  project    = var.project_id
  database   = local.database
  collection = "dead_letters"
  field      = local.ttl_field

  ttl_config {}

  dynamic "index_config" {
    for_each = local.ttl_collections.dead_letters.indexed ? [] : [true]
    content {}
  }

  depends_on = [google_firestore_field.deliveries_expires_at]
}

resource "google_firestore_field" "rate_windows_expires_at" {
  project    = var.project_id
  database   = local.database
  collection = "rate_windows"
  field      = local.ttl_field

  ttl_config {}

  dynamic "index_config" {
    for_each = local.ttl_collections.rate_windows.indexed ? [] : [true]
    content {}
  }

  depends_on = [google_firestore_field.dead_letters_expires_at]
}

# A collection group: each workspace's claims are workspaces/{ws}/event_claims/{key}. Made
# whatever dedup_store says, so a switch to Firestore never waits for its policy.
resource "google_firestore_field" "event_claims_expires_at" {
  project    = var.project_id
  database   = local.database
  collection = "event_claims"
  field      = local.ttl_field

  ttl_config {}

  dynamic "index_config" {
    for_each = local.ttl_collections.event_claims.indexed ? [] : [true]
    content {}
  }

  depends_on = [google_firestore_field.rate_windows_expires_at]
}

resource "google_firestore_index" "dead_letters_by_destination_id" {
  project     = var.project_id
  database    = local.database
  collection  = local.composite_indexes.dead_letters_by_destination_id.collection
  query_scope = local.composite_indexes.dead_letters_by_destination_id.query_scope

  dynamic "fields" {
    for_each = local.composite_indexes.dead_letters_by_destination_id.fields
    content {
      field_path = fields.value.field_path
      order      = fields.value.order
    }
  }

  depends_on = [google_firestore_field.event_claims_expires_at]
}

resource "google_firestore_index" "dead_letters_by_reason_code" {
  project     = var.project_id
  database    = local.database
  collection  = local.composite_indexes.dead_letters_by_reason_code.collection
  query_scope = local.composite_indexes.dead_letters_by_reason_code.query_scope

  dynamic "fields" {
    for_each = local.composite_indexes.dead_letters_by_reason_code.fields
    content {
      field_path = fields.value.field_path
      order      = fields.value.order
    }
  }

  depends_on = [google_firestore_index.dead_letters_by_destination_id]
}

resource "google_firestore_index" "dead_letters_by_status" {
  project     = var.project_id
  database    = local.database
  collection  = local.composite_indexes.dead_letters_by_status.collection
  query_scope = local.composite_indexes.dead_letters_by_status.query_scope

  dynamic "fields" {
    for_each = local.composite_indexes.dead_letters_by_status.fields
    content {
      field_path = fields.value.field_path
      order      = fields.value.order
    }
  }

  depends_on = [google_firestore_index.dead_letters_by_reason_code]
}

resource "google_firestore_index" "dead_letters_by_destination_id_reason_code" {
  project     = var.project_id
  database    = local.database
  collection  = local.composite_indexes.dead_letters_by_destination_id_reason_code.collection
  query_scope = local.composite_indexes.dead_letters_by_destination_id_reason_code.query_scope

  dynamic "fields" {
    for_each = local.composite_indexes.dead_letters_by_destination_id_reason_code.fields
    content {
      field_path = fields.value.field_path
      order      = fields.value.order
    }
  }

  depends_on = [google_firestore_index.dead_letters_by_status]
}

resource "google_firestore_index" "dead_letters_by_destination_id_status" {
  project     = var.project_id
  database    = local.database
  collection  = local.composite_indexes.dead_letters_by_destination_id_status.collection
  query_scope = local.composite_indexes.dead_letters_by_destination_id_status.query_scope

  dynamic "fields" {
    for_each = local.composite_indexes.dead_letters_by_destination_id_status.fields
    content {
      field_path = fields.value.field_path
      order      = fields.value.order
    }
  }

  depends_on = [google_firestore_index.dead_letters_by_destination_id_reason_code]
}

resource "google_firestore_index" "dead_letters_by_reason_code_status" {
  project     = var.project_id
  database    = local.database
  collection  = local.composite_indexes.dead_letters_by_reason_code_status.collection
  query_scope = local.composite_indexes.dead_letters_by_reason_code_status.query_scope

  dynamic "fields" {
    for_each = local.composite_indexes.dead_letters_by_reason_code_status.fields
    content {
      field_path = fields.value.field_path
      order      = fields.value.order
    }
  }

  depends_on = [google_firestore_index.dead_letters_by_destination_id_status]
}

resource "google_firestore_index" "dead_letters_by_destination_id_reason_code_status" {
  project     = var.project_id
  database    = local.database
  collection  = local.composite_indexes.dead_letters_by_destination_id_reason_code_status.collection
  query_scope = local.composite_indexes.dead_letters_by_destination_id_reason_code_status.query_scope

  dynamic "fields" {
    for_each = local.composite_indexes.dead_letters_by_destination_id_reason_code_status.fields
    content {
      field_path = fields.value.field_path
      order      = fields.value.order
    }
  }

  depends_on = [google_firestore_index.dead_letters_by_reason_code_status]
}

resource "google_firestore_index" "audit_log_by_resource_type" {
  project     = var.project_id
  database    = local.database
  collection  = local.composite_indexes.audit_log_by_resource_type.collection
  query_scope = local.composite_indexes.audit_log_by_resource_type.query_scope

  dynamic "fields" {
    for_each = local.composite_indexes.audit_log_by_resource_type.fields
    content {
      field_path = fields.value.field_path
      order      = fields.value.order
    }
  }

  depends_on = [google_firestore_index.dead_letters_by_destination_id_reason_code_status]
}

resource "google_firestore_index" "audit_log_by_resource_id" {
  project     = var.project_id
  database    = local.database
  collection  = local.composite_indexes.audit_log_by_resource_id.collection
  query_scope = local.composite_indexes.audit_log_by_resource_id.query_scope

  dynamic "fields" {
    for_each = local.composite_indexes.audit_log_by_resource_id.fields
    content {
      field_path = fields.value.field_path
      order      = fields.value.order
    }
  }

  depends_on = [google_firestore_index.audit_log_by_resource_type]
}

resource "google_firestore_index" "audit_log_by_token_id" {
  project     = var.project_id
  database    = local.database
  collection  = local.composite_indexes.audit_log_by_token_id.collection
  query_scope = local.composite_indexes.audit_log_by_token_id.query_scope

  dynamic "fields" {
    for_each = local.composite_indexes.audit_log_by_token_id.fields
    content {
      field_path = fields.value.field_path
      order      = fields.value.order
    }
  }

  depends_on = [google_firestore_index.audit_log_by_resource_id]
}

resource "google_firestore_index" "audit_log_by_resource_type_resource_id" {
  project     = var.project_id
  database    = local.database
  collection  = local.composite_indexes.audit_log_by_resource_type_resource_id.collection
  query_scope = local.composite_indexes.audit_log_by_resource_type_resource_id.query_scope

  dynamic "fields" {
    for_each = local.composite_indexes.audit_log_by_resource_type_resource_id.fields
    content {
      field_path = fields.value.field_path
      order      = fields.value.order
    }
  }

  depends_on = [google_firestore_index.audit_log_by_token_id]
}

resource "google_firestore_index" "audit_log_by_resource_type_token_id" {
  project     = var.project_id
  database    = local.database
  collection  = local.composite_indexes.audit_log_by_resource_type_token_id.collection
  query_scope = local.composite_indexes.audit_log_by_resource_type_token_id.query_scope

  dynamic "fields" {
    for_each = local.composite_indexes.audit_log_by_resource_type_token_id.fields
    content {
      field_path = fields.value.field_path
      order      = fields.value.order
    }
  }

  depends_on = [google_firestore_index.audit_log_by_resource_type_resource_id]
}

resource "google_firestore_index" "audit_log_by_resource_id_token_id" {
  project     = var.project_id
  database    = local.database
  collection  = local.composite_indexes.audit_log_by_resource_id_token_id.collection
  query_scope = local.composite_indexes.audit_log_by_resource_id_token_id.query_scope

  dynamic "fields" {
    for_each = local.composite_indexes.audit_log_by_resource_id_token_id.fields
    content {
      field_path = fields.value.field_path
      order      = fields.value.order
    }
  }

  depends_on = [google_firestore_index.audit_log_by_resource_type_token_id]
}

resource "google_firestore_index" "audit_log_by_resource_type_resource_id_token_id" {
  project     = var.project_id
  database    = local.database
  collection  = local.composite_indexes.audit_log_by_resource_type_resource_id_token_id.collection
  query_scope = local.composite_indexes.audit_log_by_resource_type_resource_id_token_id.query_scope

  dynamic "fields" {
    for_each = local.composite_indexes.audit_log_by_resource_type_resource_id_token_id.fields
    content {
      field_path = fields.value.field_path
      order      = fields.value.order
    }
  }

  depends_on = [google_firestore_index.audit_log_by_resource_id_token_id]
}

resource "google_firestore_index" "regulations_by_type" {
  project     = var.project_id
  database    = local.database
  collection  = local.composite_indexes.regulations_by_type.collection
  query_scope = local.composite_indexes.regulations_by_type.query_scope

  dynamic "fields" {
    for_each = local.composite_indexes.regulations_by_type.fields
    content {
      field_path = fields.value.field_path
      order      = fields.value.order
    }
  }

  depends_on = [google_firestore_index.audit_log_by_resource_type_resource_id_token_id]
}

resource "google_firestore_index" "regulations_by_status" {
  project     = var.project_id
  database    = local.database
  collection  = local.composite_indexes.regulations_by_status.collection
  query_scope = local.composite_indexes.regulations_by_status.query_scope

  dynamic "fields" {
    for_each = local.composite_indexes.regulations_by_status.fields
    content {
      field_path = fields.value.field_path
      order      = fields.value.order
    }
  }

  depends_on = [google_firestore_index.regulations_by_type]
}

resource "google_firestore_index" "regulations_by_type_status" {
  project     = var.project_id
  database    = local.database
  collection  = local.composite_indexes.regulations_by_type_status.collection
  query_scope = local.composite_indexes.regulations_by_type_status.query_scope

  dynamic "fields" {
    for_each = local.composite_indexes.regulations_by_type_status.fields
    content {
      field_path = fields.value.field_path
      order      = fields.value.order
    }
  }

  depends_on = [google_firestore_index.regulations_by_status]
}

resource "google_firestore_index" "quarantine_by_status" {
  project     = var.project_id
  database    = local.database
  collection  = local.composite_indexes.quarantine_by_status.collection
  query_scope = local.composite_indexes.quarantine_by_status.query_scope

  dynamic "fields" {
    for_each = local.composite_indexes.quarantine_by_status.fields
    content {
      field_path = fields.value.field_path
      order      = fields.value.order
    }
  }

  depends_on = [google_firestore_index.regulations_by_type_status]
}

resource "google_firestore_index" "deliveries_by_destination_id" {
  project     = var.project_id
  database    = local.database
  collection  = local.composite_indexes.deliveries_by_destination_id.collection
  query_scope = local.composite_indexes.deliveries_by_destination_id.query_scope

  dynamic "fields" {
    for_each = local.composite_indexes.deliveries_by_destination_id.fields
    content {
      field_path = fields.value.field_path
      order      = fields.value.order
    }
  }

  depends_on = [google_firestore_index.quarantine_by_status]
}

resource "google_firestore_index" "violations_by_workspace_id" {
  project     = var.project_id
  database    = local.database
  collection  = local.composite_indexes.violations_by_workspace_id.collection
  query_scope = local.composite_indexes.violations_by_workspace_id.query_scope

  dynamic "fields" {
    for_each = local.composite_indexes.violations_by_workspace_id.fields
    content {
      field_path = fields.value.field_path
      order      = fields.value.order
    }
  }

  depends_on = [google_firestore_index.deliveries_by_destination_id]
}

resource "google_firestore_index" "delivery_batches_by_destination_id" {
  project     = var.project_id
  database    = local.database
  collection  = local.composite_indexes.delivery_batches_by_destination_id.collection
  query_scope = local.composite_indexes.delivery_batches_by_destination_id.query_scope

  dynamic "fields" {
    for_each = local.composite_indexes.delivery_batches_by_destination_id.fields
    content {
      field_path = fields.value.field_path
      order      = fields.value.order
    }
  }

  depends_on = [google_firestore_index.violations_by_workspace_id]
}

resource "google_firestore_field" "delivery_batches_expires_at" {
  project    = var.project_id
  database   = local.database
  collection = "delivery_batches"
  field      = local.ttl_field

  ttl_config {}

  dynamic "index_config" {
    for_each = local.ttl_collections.delivery_batches.indexed ? [] : [true]
    content {}
  }

  depends_on = [google_firestore_index.delivery_batches_by_destination_id]
}

resource "google_firestore_field" "event_log_events" {
  project    = var.project_id
  database   = local.database
  collection = "event_log"
  field      = local.unindexed_maps.event_log

  index_config {}

  depends_on = [google_firestore_field.delivery_batches_expires_at]
}

resource "google_firestore_field" "delivery_batches_deliveries" {
  project    = var.project_id
  database   = local.database
  collection = "delivery_batches"
  field      = local.unindexed_maps.delivery_batches

  index_config {}

  depends_on = [google_firestore_field.event_log_events]
}
