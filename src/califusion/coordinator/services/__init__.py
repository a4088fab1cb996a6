"""Services: the coordinator's rules, one class per resource. Routes call these."""

from califusion.coordinator.services.jobs import JobService
from califusion.coordinator.services.principals import PrincipalService
from califusion.coordinator.services.rounds import RoundService

__all__ = ["JobService", "PrincipalService", "RoundService"]
