"""The campaign: one frozen value holding every section of the campaign file, read and
checked once (:func:`load_campaign`), and the guard on where its load may go."""

from harness.campaign.loader import Override, load_campaign
from harness.campaign.model import Campaign, CapacitySpec, SearchPlan
from harness.campaign.target import check_target, check_url, is_loopback_target

__all__ = [
    "Campaign",
    "CapacitySpec",
    "Override",
    "SearchPlan",
    "check_target",
    "check_url",
    "is_loopback_target",
    "load_campaign",
]
