variable "project_id" {
  description = "Project the function, its service account and its source object live in."
  type        = string
}

variable "region" {
  description = "Region of the function (Cloud Functions gen2 / Cloud Run)."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the function's and its service account's names."
  type        = string
}

variable "name" {
  description = "The function's directory under functions/ (`functions/<name>/main.py`); also its entry point."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]*$", var.name))
    error_message = "name must be a Python identifier in lower case, as the directory under functions/ is."
  }
}

variable "runtime" {
  description = "Python runtime of the function."
  type        = string
  default     = "python311"

  validation {
    condition     = contains(["python311", "python312"], var.runtime)
    error_message = "runtime must be python311 or python312 (the versions Streams is tested on)."
  }
}

variable "source_root" {
  description = "The repository root, where `make package` built the function's zip (terraform/.build/functions/<name>.zip: `functions/<name>/main.py` as main.py, every .py and .json file of `shared/`, requirements.txt and the built files it serves) and its manifest, which plan checks against the files."
  type        = string
}

variable "asset_patterns" {
  description = "fileset() patterns, relative to source_root, of built files the function serves (e.g. console/dist/**): plan fails unless each matches a file and the zip holds every file they match (make console / make collect, then make package)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for pattern in var.asset_patterns : !startswith(pattern, "/") && !strcontains(pattern, "..")])
    error_message = "asset_patterns must be relative to source_root and stay inside it."
  }
}

variable "requirements" {
  description = "Content of terraform/requirements.txt, the lock file generated from pyproject.toml by terraform/build.py: plan fails unless the zip carries exactly this requirements.txt."
  type        = string
}

variable "source_bucket" {
  description = "Bucket the source zip is uploaded to; the object is named by the content hash, so any code change redeploys."
  type        = string
}

variable "docker_repository" {
  description = "Artifact Registry repository (projects/<p>/locations/<r>/repositories/<name>) the build pushes the function's image to; null for Cloud Functions' own gcf-artifacts."
  type        = string
  default     = null
}

variable "build_service_account" {
  description = "Full resource name (projects/<p>/serviceAccounts/<email>) of the service account Cloud Build runs the function's build as; null for the project's default."
  type        = string
  default     = null
}

variable "size" {
  description = "Instance shape and scaling: memory (Cloud Run quantity, e.g. 512Mi), vCPUs, concurrent requests per instance (also gunicorn's THREADS), timeout in seconds, min and max instances."
  type = object({
    memory          = optional(string, "512Mi")
    cpu             = optional(string, "1")
    concurrency     = optional(number, 20)
    timeout_seconds = optional(number, 60)
    min_instances   = optional(number, 0)
    max_instances   = optional(number, 10)
  })
  default = {}

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.size.memory))
    error_message = "size.memory must be a quantity such as 512Mi or 2Gi."
  }
  validation {
    condition     = contains(["1", "2", "4", "6", "8"], var.size.cpu)
    error_message = "size.cpu must be 1, 2, 4, 6 or 8 (concurrency above 1 needs at least 1 vCPU)."
  }
  validation {
    condition     = var.size.concurrency >= 1 && var.size.concurrency <= 1000
    error_message = "size.concurrency must be between 1 and 1000."
  }
  validation {
    condition     = var.size.timeout_seconds >= 1 && var.size.timeout_seconds <= 3600
    error_message = "size.timeout_seconds must be between 1 and 3600."
  }
  validation {
    condition     = var.size.min_instances >= 0 && var.size.min_instances <= var.size.max_instances
    error_message = "size.min_instances must be between 0 and size.max_instances."
  }
}

variable "environment" {
  description = "Environment variables of the function (the settings shared/config.py reads)."
  type        = map(string)
  default     = {}
}

variable "secret_environment" {
  description = "Environment variables read from Secret Manager: variable name => {secret id, version}. The function's service account is granted secretAccessor on each secret."
  type = map(object({
    secret  = string
    version = optional(string, "latest")
  }))
  default = {}

  validation {
    condition     = alltrue([for key in keys(var.secret_environment) : can(regex("^[A-Z][A-Z0-9_]*$", key))])
    error_message = "secret_environment keys must be environment variable names (A-Z, 0-9, _)."
  }
}

variable "project_roles" {
  description = "Predefined (or custom) roles the function's service account gets on the project. Primitive roles are refused."
  type        = set(string)
  default     = []

  validation {
    condition     = alltrue([for role in var.project_roles : !can(regex("^roles/(owner|editor|viewer)$", role))])
    error_message = "project_roles must not contain primitive roles (owner, editor, viewer)."
  }
}

variable "public" {
  description = "Whether callers on the internet may invoke the function through the load balancer (ingress internal-and-load-balancer, no IAM identity needed): HTTP functions authenticate callers themselves (write keys, Bearer tokens). False: internal ingress (or `ingress_settings`), only `invokers`."
  type        = bool
  default     = false
}

variable "public_access" {
  description = "How a public function lets callers without a Google identity in: all_users grants roles/run.invoker to allUsers; no_invoker_check turns Cloud Run's invoker check off instead (no allUsers binding, for organisations whose domain-restricted-sharing policy forbids it; needs an authenticated gcloud where Terraform runs)."
  type        = string
  default     = "all_users"

  validation {
    condition     = contains(["all_users", "no_invoker_check"], var.public_access)
    error_message = "public_access must be all_users or no_invoker_check."
  }
}

variable "invokers" {
  description = "Members allowed to invoke a non-public function, keyed by a name known at plan time (e.g. push = the Pub/Sub push service account)."
  type        = map(string)
  default     = {}
}

variable "vpc_connector" {
  description = "Serverless VPC Access connector for the function's egress (e.g. deliver reaching private destinations); null for none."
  type = object({
    connector       = string
    egress_settings = optional(string, "PRIVATE_RANGES_ONLY")
  })
  default = null

  validation {
    condition     = var.vpc_connector == null || contains(["PRIVATE_RANGES_ONLY", "ALL_TRAFFIC"], try(var.vpc_connector.egress_settings, ""))
    error_message = "vpc_connector.egress_settings must be PRIVATE_RANGES_ONLY or ALL_TRAFFIC."
  }
}

variable "direct_vpc" {
  description = "Direct VPC egress for the function (e.g. the functions that reach the deduplication store's Memorystore instance): the VPC network and subnetwork (ids) its instances take addresses from, and which traffic leaves through it (PRIVATE_RANGES_ONLY: private addresses only; Google APIs keep their usual path). null for none. A function has either this or vpc_connector, never both."
  type = object({
    network    = string
    subnetwork = string
    egress     = optional(string, "PRIVATE_RANGES_ONLY")
  })
  default = null

  validation {
    condition     = var.direct_vpc == null || contains(["PRIVATE_RANGES_ONLY", "ALL_TRAFFIC"], try(var.direct_vpc.egress, ""))
    error_message = "direct_vpc.egress must be PRIVATE_RANGES_ONLY or ALL_TRAFFIC."
  }
}

variable "labels" {
  description = "Labels added to the function and its source object."
  type        = map(string)
  default     = {}
}

variable "ingress_settings" {
  description = "Overrides the ingress that `public` implies. ALLOW_ALL for a private function other functions call directly (Cloud Run counts their calls as internal only through a VPC): IAM (`invokers`) is then what keeps everyone else out; and for a public function with no load balancer in front (edge \"direct\"), whose run.app URL is then its way in."
  type        = string
  default     = null

  validation {
    condition     = var.ingress_settings == null || contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], coalesce(var.ingress_settings, "ALLOW_ALL"))
    error_message = "ingress_settings must be ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}
