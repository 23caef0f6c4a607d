variable "project_id" {
  description = "The (empty) project to deploy Streams into."
  type        = string
}

variable "region" {
  description = "Region of the functions."
  type        = string
  default     = "us-central1"
}

variable "domains" {
  description = "Your own host names for Streams, e.g. [\"data.example.com\"]; empty with edge kind \"direct\"."
  type        = list(string)
  default     = []
}

variable "edge" {
  description = "How callers reach Streams: { kind = \"load_balancer\" } (default: a load balancer on `domains`) or { kind = \"direct\" } (the functions' own URLs, no fixed cost; docs/DEPLOY.md, \"Choosing the edge\")."
  type = object({
    kind = optional(string, "load_balancer")
  })
  default = {}

  validation {
    condition     = contains(["load_balancer", "direct"], var.edge.kind)
    error_message = "edge.kind must be load_balancer or direct."
  }
}
