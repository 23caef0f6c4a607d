variable "project_id" {
  description = "The Google Cloud project Streams is deployed into (one Streams per project: the run-time topic names streams-source-<id> and streams-deliveries-<id> are not prefixed)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project id (6-30 characters: lower-case letters, digits, hyphens)."
  }
}

variable "region" {
  description = "Region of the functions (and their load balancer backends), the source bucket and, unless overridden, Firestore and BigQuery."
  type        = string
  default     = "us-central1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must be a Google Cloud region such as us-central1."
  }
}

variable "name_prefix" {
  description = "Prefix of every named resource Terraform creates (functions, service accounts, bucket, gateway). Short: service account ids are cut at 30 characters."
  type        = string
  default     = "streams"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,11}$", var.name_prefix))
    error_message = "name_prefix must be 2-12 characters: a lower-case letter, then lower-case letters, digits or hyphens."
  }
}

variable "runtime" {
  description = "Python runtime of every function (Streams is tested on 3.11 and 3.12)."
  type        = string
  default     = "python311"

  validation {
    condition     = contains(["python311", "python312"], var.runtime)
    error_message = "runtime must be python311 or python312."
  }
}

variable "destination_egress" {
  description = <<-EOT
    Where deliver may send events. allow_private_destinations sets STREAMS_ALLOW_PRIVATE_DESTINATIONS:
    false (production default) refuses loopback, private and other non-global addresses, so a
    destination URL cannot reach internal services; the metadata server is refused always. Set it
    true only to deliver to receivers inside your VPC, through vpc_connector (a Serverless VPC Access
    connector, projects/<p>/locations/<r>/connectors/<name>); egress_settings PRIVATE_RANGES_ONLY
    sends only private ranges through the connector, ALL_TRAFFIC everything (e.g. for a static
    egress IP through Cloud NAT, which destinations can allowlist).
  EOT
  type = object({
    allow_private_destinations = optional(bool, false)
    vpc_connector              = optional(string)
    egress_settings            = optional(string, "PRIVATE_RANGES_ONLY")
  })
  default = {}

  validation {
    condition     = contains(["PRIVATE_RANGES_ONLY", "ALL_TRAFFIC"], var.destination_egress.egress_settings)
    error_message = "destination_egress.egress_settings must be PRIVATE_RANGES_ONLY or ALL_TRAFFIC."
  }
  validation {
    condition     = !var.destination_egress.allow_private_destinations || var.destination_egress.vpc_connector != null
    error_message = "destination_egress.allow_private_destinations needs a vpc_connector: without one, private addresses are not reachable from the functions."
  }
}

variable "dedup_store" {
  description = <<-EOT
    Where process keeps its deduplication window, one claim per event for 48 hours (docs/DEPLOY.md,
    "Deduplication store"). The functions that read or write claims (process, events, dead_letters,
    event_contracts) are told which by their environment.
      kind = "firestore" (default): a document per claim (workspaces/{ws}/event_claims), deleted by a
        TTL policy: no fixed cost, one write and one TTL delete per event.
      kind = "valkey": a Memorystore for Valkey instance (Valkey 8.0, cluster mode disabled, IAM
        authentication), reached by those four functions over Direct VPC egress: a fixed price per
        node-hour, no per-event charge.
    For valkey:
      node_type      standard-small (default: 5.2 GB for keys, under Memorystore's SLA),
                     shared-core-nano (1.12 GB, no SLA: trials only), highmem-medium (10.4 GB),
                     highmem-xlarge (46.4 GB). One shard: the claims client is not cluster-aware.
      replica_count  0 (default) to 5 replicas of the one shard, each in another zone: a primary's
                     failure then fails over instead of emptying the window; each is another node.
      network, subnetwork  an existing VPC network and a subnet of it in `region` (ids:
                     projects/<p>/global/networks/<n>, projects/<p>/regions/<r>/subnetworks/<s>),
                     both or neither. Neither: Terraform creates a network and a /22 subnet.
      create_connection_policy  true (default): create the network's service connection policy
                     for Memorystore in `region`; false when the given network already has one
                     (one per network, region and service class).
  EOT
  type = object({
    kind                     = optional(string, "firestore")
    node_type                = optional(string, "standard-small")
    replica_count            = optional(number, 0)
    network                  = optional(string)
    subnetwork               = optional(string)
    create_connection_policy = optional(bool, true)
  })
  default = {}

  validation {
    condition     = contains(["firestore", "valkey"], var.dedup_store.kind)
    error_message = "dedup_store.kind must be firestore or valkey."
  }
  validation {
    condition     = contains(["shared-core-nano", "standard-small", "highmem-medium", "highmem-xlarge"], var.dedup_store.node_type)
    error_message = "dedup_store.node_type must be shared-core-nano, standard-small, highmem-medium or highmem-xlarge."
  }
  validation {
    condition     = var.dedup_store.replica_count >= 0 && var.dedup_store.replica_count <= 5 && floor(var.dedup_store.replica_count) == var.dedup_store.replica_count
    error_message = "dedup_store.replica_count must be a whole number from 0 to 5."
  }
  validation {
    condition     = (var.dedup_store.network == null) == (var.dedup_store.subnetwork == null)
    error_message = "dedup_store.network and dedup_store.subnetwork go together: give both (an existing network and a subnet of it), or neither (Terraform creates them)."
  }
  validation {
    condition     = var.dedup_store.network == null || can(regex("^projects/[a-z][a-z0-9-]+/global/networks/[a-z][a-z0-9-]*$", coalesce(var.dedup_store.network, "x")))
    error_message = "dedup_store.network must be a network id: projects/<project>/global/networks/<name>."
  }
  validation {
    condition     = var.dedup_store.subnetwork == null || can(regex("^projects/[a-z][a-z0-9-]+/regions/[a-z0-9-]+/subnetworks/[a-z][a-z0-9-]*$", coalesce(var.dedup_store.subnetwork, "x")))
    error_message = "dedup_store.subnetwork must be a subnetwork id: projects/<project>/regions/<region>/subnetworks/<name>."
  }
}

variable "scale" {
  description = "starter (default): every function's max_instances capped to fit a new project's regional Cloud Run quota (64 vCPU and 60 GiB at full scale; enough for 100 million events a month). large: the maxima of main.tf (416 vCPU, 472 GiB), after raising the quota. function_sizes overrides either. docs/DEPLOY.md has the sizing table."
  type        = string
  default     = "starter"

  validation {
    condition     = contains(["starter", "large"], var.scale)
    error_message = "scale must be starter or large."
  }
}

variable "function_sizes" {
  description = <<-EOT
    Per-function overrides of the instance shape, keyed by function name; unset fields keep the
    defaults chosen for each job (main.tf, local.functions; docs/DEPLOY.md explains each):
      function               memory cpu concurrency timeout min max
      ingest                 1Gi    1   80          30      1   100  waits on Pub/Sub acks; warm for SDKs
      process                1Gi    1   16          60      0   100  timeout = push ack deadline (60 s)
      deliver                2Gi    1   32          60      0   100  waits on receivers; a QuickJS context per thread
      dead_letters           512Mi  1   16          60      0   10
      events                 1Gi    1   40          330     0   20   live streams last 300 s, one thread each
      event_transformations  1Gi    1   8           60      0   10   runs JavaScript tests
      warehouse              512Mi  1   1           1800    0   1    the scheduled sync, one at a time
      other HTTP functions   512Mi  1   20          60      0   10   management API
    memory is a Cloud Run quantity (512Mi, 2Gi); concurrency is also gunicorn's THREADS.
  EOT
  type = map(object({
    memory          = optional(string)
    cpu             = optional(string)
    concurrency     = optional(number)
    timeout_seconds = optional(number)
    min_instances   = optional(number)
    max_instances   = optional(number)
  }))
  default = {}

  validation {
    condition     = alltrue([for size in values(var.function_sizes) : size.memory == null || can(regex("^[0-9]+(Mi|Gi)$", size.memory))])
    error_message = "function_sizes.*.memory must be a quantity such as 512Mi or 2Gi."
  }
  validation {
    condition     = alltrue([for size in values(var.function_sizes) : size.concurrency == null || try(size.concurrency >= 1 && size.concurrency <= 1000, false)])
    error_message = "function_sizes.*.concurrency must be between 1 and 1000."
  }
  validation {
    condition     = alltrue([for size in values(var.function_sizes) : size.timeout_seconds == null || try(size.timeout_seconds >= 1 && size.timeout_seconds <= 3600, false)])
    error_message = "function_sizes.*.timeout_seconds must be between 1 and 3600."
  }
}

variable "settings" {
  description = "Tunables the functions read from the environment (shared/config.py); defaults are the code's. Caches bound how late a revoked write key or a changed rule takes effect (0-10 s); delivery backoff and attempts are the retry schedule of failing deliveries; process_max_attempts (5-100) and process_max_backoff_seconds bound how long one source message is retried before Pub/Sub dead-letters it for replay; transform_* bound each JavaScript transformation (CPU ms per event, heap MB per sandbox, result KB) and, with transform_sandbox_memory_mb, the heaps of the calls running at once in one instance (keep it under deliver's memory); trusted_proxy_hops is how many X-Forwarded-For entries, from the right, Google's front end appends, the client's address being the leftmost of them: unset, 2 with edge.kind = \"load_balancer\" (`<client>,<load balancer>`) and 1 with \"direct\" (Cloud Run's front end writes `<client>` alone)."
  type = object({
    write_key_cache_seconds      = optional(number, 5)
    config_cache_seconds         = optional(number, 5)
    delivery_min_backoff_seconds = optional(number, 10)
    delivery_max_backoff_seconds = optional(number, 600)
    delivery_max_attempts        = optional(number, 8)
    process_max_attempts         = optional(number, 100)
    process_max_backoff_seconds  = optional(number, 60)
    transform_cpu_ms             = optional(number, 100)
    transform_memory_mb          = optional(number, 64)
    transform_output_kb          = optional(number, 32)
    transform_sandbox_memory_mb  = optional(number, 512)
    trusted_proxy_hops           = optional(number)
  })
  default = {}

  validation {
    condition     = var.settings.write_key_cache_seconds >= 0 && var.settings.write_key_cache_seconds <= 10 && var.settings.config_cache_seconds >= 0 && var.settings.config_cache_seconds <= 10
    error_message = "settings.*_cache_seconds must be between 0 and 10 (revocations must bite within 10 s)."
  }
  validation {
    condition     = var.settings.delivery_min_backoff_seconds >= 0 && var.settings.delivery_min_backoff_seconds <= var.settings.delivery_max_backoff_seconds && var.settings.delivery_max_backoff_seconds <= 600
    error_message = "settings.delivery_*_backoff_seconds must satisfy 0 <= min <= max <= 600."
  }
  validation {
    condition     = var.settings.delivery_max_attempts >= 1 && var.settings.delivery_max_attempts <= 100
    error_message = "settings.delivery_max_attempts must be between 1 and 100."
  }
  validation {
    condition     = var.settings.process_max_attempts >= 5 && var.settings.process_max_attempts <= 100 && var.settings.process_max_backoff_seconds >= 1 && var.settings.process_max_backoff_seconds <= 600
    error_message = "settings.process_max_attempts must be between 5 and 100 (Pub/Sub's dead-letter range), process_max_backoff_seconds between 1 and 600."
  }
  validation {
    condition     = var.settings.transform_cpu_ms >= 1 && var.settings.transform_cpu_ms <= 10000 && var.settings.transform_memory_mb >= 1 && var.settings.transform_memory_mb <= 1024 && var.settings.transform_output_kb >= 1 && var.settings.transform_output_kb <= 1024 && var.settings.transform_sandbox_memory_mb >= 8 && var.settings.transform_sandbox_memory_mb <= 16384
    error_message = "settings.transform_*: cpu_ms 1-10000, memory_mb 1-1024, output_kb 1-1024, sandbox_memory_mb 8-16384."
  }
  validation {
    condition     = var.settings.trusted_proxy_hops == null || try(var.settings.trusted_proxy_hops >= 0 && var.settings.trusted_proxy_hops <= 10 && floor(var.settings.trusted_proxy_hops) == var.settings.trusted_proxy_hops, false)
    error_message = "settings.trusted_proxy_hops must be a whole number between 0 and 10, or unset (2 behind the load balancer, 1 with edge.kind = \"direct\")."
  }
}

variable "extra_environment" {
  description = "More environment variables for every function (a setting added to shared/config.py before this module knows it). Keys must start with STREAMS_."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for key in keys(var.extra_environment) : can(regex("^STREAMS_[A-Z0-9_]+$", key))])
    error_message = "extra_environment keys must look like STREAMS_SOMETHING."
  }
}

variable "secrets" {
  description = "Secret Manager secrets exposed to functions as environment variables: secret id suffix => {env (variable name), functions (names)}. Terraform creates the secret (named <prefix>-<key>) and grants each listed function secretAccessor on it; add the value out of band (`gcloud secrets versions add`) before the functions reference it, so it never enters Terraform state. Example: a per-deployment PII hashing key for a future setting."
  type = map(object({
    env       = string
    functions = list(string)
  }))
  default = {}

  validation {
    condition     = alltrue([for key, secret in var.secrets : can(regex("^[a-z0-9-]+$", key)) && can(regex("^STREAMS_[A-Z0-9_]+$", secret.env))])
    error_message = "secrets keys must be lower-case ids and env names must look like STREAMS_SOMETHING."
  }
}

variable "geo_database" {
  description = "The MaxMind-format City database (GeoIP2 or GeoLite2 City) ingest fills context.location from (docs/PRIVACY.md, Geo enrichment): its repository path, under geo/ (e.g. geo/GeoLite2-City.mmdb). `make package` puts every geo/*.mmdb into ingest's zip, and the plan is refused when this file is not in it. null: no geo enrichment."
  type        = string
  default     = null

  validation {
    condition     = var.geo_database == null || can(regex("^geo/[A-Za-z0-9._-]+[.]mmdb$", coalesce(var.geo_database, "x")))
    error_message = "geo_database must name a .mmdb file directly under geo/, such as geo/GeoLite2-City.mmdb."
  }
}

variable "firestore" {
  description = "Firestore (native mode): location_id (default: region; nam5/eur3 for multi-region), create_database (false if the project already has a (default) database), delete_protection."
  type = object({
    location_id       = optional(string)
    create_database   = optional(bool, true)
    delete_protection = optional(bool, true)
  })
  default = {}

  validation {
    condition     = var.firestore.location_id == null || can(regex("^[a-z0-9-]+$", coalesce(var.firestore.location_id, "x")))
    error_message = "firestore.location_id must be a location id such as us-central1 or nam5."
  }
}

variable "bigquery" {
  description = "BigQuery: dataset_id (STREAMS_BIGQUERY_DATASET), location (default: region), deletion_protection of the tables, partition_expiration_days: the deployment-wide retention of events, in whole days from 1 to 36500 (null, the default, keeps them forever; otherwise each day's partition is dropped this many days after it). A workspace's own, shorter retention is its warehouse settings' retention_days, enforced by the warehouse sync (docs/DEPLOY.md, Warehouse)."
  type = object({
    dataset_id                = optional(string, "streams")
    location                  = optional(string)
    deletion_protection       = optional(bool, true)
    partition_expiration_days = optional(number)
  })
  default = {}

  validation {
    condition     = can(regex("^[A-Za-z0-9_]+$", var.bigquery.dataset_id))
    error_message = "bigquery.dataset_id may contain only letters, digits and underscores."
  }
  validation {
    condition     = var.bigquery.partition_expiration_days == null || try(var.bigquery.partition_expiration_days >= 1 && var.bigquery.partition_expiration_days <= 36500 && floor(var.bigquery.partition_expiration_days) == var.bigquery.partition_expiration_days, false)
    error_message = "bigquery.partition_expiration_days must be null (keep events forever) or a whole number of days from 1 to 36500."
  }
}

variable "warehouse_sync_schedule" {
  description = "When Cloud Scheduler runs the sync of every workspace's warehouse views (the private warehouse function), as a cron expression in UTC: hourly by default. A workspace can also sync on demand (POST /api/v1/workspaces/{id}/warehouse/sync)."
  type        = string
  default     = "0 * * * *"

  validation {
    condition     = can(regex("^[^ ]+( [^ ]+){4}$", var.warehouse_sync_schedule))
    error_message = "warehouse_sync_schedule must be a cron expression of five fields, such as \"0 * * * *\" (hourly)."
  }
}

variable "edge" {
  description = <<-EOT
    How callers on the internet reach the HTTP functions (docs/DEPLOY.md, "Choosing the edge").
      kind = "load_balancer" (default): one global external Application Load Balancer on `domains`
        (modules/edge): a Google-managed certificate, Cloud Armor on ingest (ingest_protection)
        and every route under one base URL; the functions' own run.app URLs refuse callers from
        the internet. Its forwarding rules and Cloud Armor cost about $29 a month before any
        traffic (docs/COST.md).
      kind = "direct": no load balancer, certificate, Cloud Armor policy or serverless network
        endpoint groups. Each HTTP function answers at its own run.app URL (output `endpoints`),
        with ingress "all"; `domains` must be empty and ingest_protection does not apply (ingest's
        own per-source rate limits still do). The console, at its function's own URL, forwards
        the management API's paths to their functions (STREAMS_CONSOLE_API_URLS). No fixed
        cost: for small deployments.
  EOT
  type = object({
    kind = optional(string, "load_balancer")
  })
  default = {}

  validation {
    condition     = contains(["load_balancer", "direct"], var.edge.kind)
    error_message = "edge.kind must be load_balancer or direct."
  }
}

variable "domains" {
  description = "The host names Streams answers on with edge.kind = \"load_balancer\", of your own domain (e.g. [\"data.example.com\"]): the load balancer's Google-managed certificate covers them, and each needs a DNS A record to the `edge_address` output. The first is the base URL of every route (SDKs, API, console, live stream). Empty (the default) with edge.kind = \"direct\", whose functions answer at their run.app URLs."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for domain in var.domains : can(regex("^([a-z0-9]([a-z0-9-]*[a-z0-9])?\\.)+[a-z]{2,63}$", domain))])
    error_message = "domains must list fully qualified host names in lower case, such as data.example.com (no scheme, no path, no wildcard)."
  }
  validation {
    condition     = var.edge.kind != "load_balancer" || length(var.domains) >= 1
    error_message = "domains must list at least one host name with edge.kind = \"load_balancer\" (the default): the load balancer's certificate is issued for them. Without a domain of your own, set edge = { kind = \"direct\" }."
  }
  validation {
    condition     = var.edge.kind != "direct" || length(var.domains) == 0
    error_message = "domains must be empty with edge.kind = \"direct\": each function answers at its own run.app URL, and no certificate is issued for a domain. Remove domains, or set edge = { kind = \"load_balancer\" } to serve them."
  }
}

variable "ingest_protection" {
  description = <<-EOT
    Cloud Armor on the ingest backend of the load balancer (enabled: false removes the policy and
    its cost, docs/COST.md; ingest's own per-source rate limits still apply). With edge.kind =
    "direct" there is no load balancer and no policy: these values are not used. Each request meets one rate limit: its write key's when it
    sends one in a header (HTTP Basic or X-Write-Key), else its address's; over it, 429. Defaults
    are generous: a site's browsers share one write key, so the key's limit caps the whole site.
      requests_per_minute_per_ip         6000 (100 a second from one address)
      requests_per_minute_per_write_key  600000 (10,000 a second for one source)
      max_body_bytes                     1048576 (1 MiB; ingest refuses above 500 KB itself), 403
      log_sample_rate                    0.01 (share of ingest's load balancer request logs kept)
  EOT
  type = object({
    enabled                           = optional(bool, true)
    requests_per_minute_per_ip        = optional(number, 6000)
    requests_per_minute_per_write_key = optional(number, 600000)
    max_body_bytes                    = optional(number, 1048576)
    log_sample_rate                   = optional(number, 0.01)
  })
  default = {}

  validation {
    condition     = var.ingest_protection.requests_per_minute_per_ip >= 1 && var.ingest_protection.requests_per_minute_per_write_key >= 1
    error_message = "ingest_protection rate limits must be at least 1 request a minute."
  }
  validation {
    condition     = var.ingest_protection.max_body_bytes >= 524288
    error_message = "ingest_protection.max_body_bytes must be at least 524288: ingest itself accepts bodies up to 500 KB."
  }
  validation {
    condition     = var.ingest_protection.log_sample_rate >= 0 && var.ingest_protection.log_sample_rate <= 1
    error_message = "ingest_protection.log_sample_rate must be between 0 and 1."
  }
}

variable "public_access" {
  description = "How the HTTP functions let callers without a Google identity in (they authenticate callers themselves): all_users (default) grants roles/run.invoker to allUsers; no_invoker_check turns Cloud Run's invoker check off instead, with no allUsers binding, for organisations whose iam.allowedPolicyMemberDomains policy forbids one (needs an authenticated gcloud CLI where Terraform runs). Either way ingress admits only the load balancer and Google-internal traffic."
  type        = string
  default     = "all_users"

  validation {
    condition     = contains(["all_users", "no_invoker_check"], var.public_access)
    error_message = "public_access must be all_users or no_invoker_check."
  }
}

variable "exclude_push_request_logs" {
  description = "Exclude the request logs of the Pub/Sub-pushed functions (process, deliver, dead_letters) from Cloud Logging: one entry per message costs more than the functions at high volume (docs/COST.md). Their application logs are kept."
  type        = bool
  default     = true
}

variable "enable_apis" {
  description = "Enable the Google APIs Streams uses (Cloud Functions, Cloud Run, Cloud Build, Artifact Registry, Pub/Sub, Firestore, BigQuery, API Gateway, Secret Manager, IAM). They are never disabled on destroy."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels added to the functions, the bucket, the dataset and the gateway."
  type        = map(string)
  default     = { app = "streams" }
}

variable "source_root" {
  description = "Path of the Streams repository (functions/, shared/); default: the directory above this module."
  type        = string
  default     = null
}

variable "recovery" {
  description = "Data safety (docs/DEPLOY.md, \"Data safety and recovery\"): firestore_point_in_time_recovery keeps 7 days of Firestore versions (applied when Terraform creates the database); firestore_backup_retention_days keeps a daily Firestore backup this many days (1-7, default 7; 0: no schedule, for a database that already has a daily one); bigquery_time_travel_hours is the events dataset's time-travel window (48-168 in whole days, default 168)."
  type = object({
    firestore_point_in_time_recovery = optional(bool, true)
    firestore_backup_retention_days  = optional(number, 7)
    bigquery_time_travel_hours       = optional(number, 168)
  })
  default = {}

  validation {
    condition     = contains([0, 1, 2, 3, 4, 5, 6, 7], var.recovery.firestore_backup_retention_days)
    error_message = "recovery.firestore_backup_retention_days must be a whole number of days from 1 to 7, or 0 for no backup schedule."
  }
  validation {
    condition     = contains([48, 72, 96, 120, 144, 168], var.recovery.bigquery_time_travel_hours)
    error_message = "recovery.bigquery_time_travel_hours must be 48, 72, 96, 120, 144 or 168."
  }
}
