# The demo's "infrastructure": what a team's Terraform environment would read from relctl.
# relctl's Terraform actuator passes the release as TF_VAR_relctl_* variables (and as
# RELCTL_* environment variables for wrapper scripts). A real module would feed
# jsondecode(var.relctl_images) into its task definitions or Lambda functions; this one
# only records them as outputs, so it needs no provider and runs offline.

variable "relctl_release_id" {
  type = string
}

variable "relctl_environment" {
  type = string
}

variable "relctl_images" {
  type        = string
  description = "JSON object: service -> image URI"
}

output "deployed" {
  value = {
    release_id  = var.relctl_release_id
    environment = var.relctl_environment
    images      = jsondecode(var.relctl_images)
  }
}
