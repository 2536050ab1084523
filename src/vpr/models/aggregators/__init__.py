"""Aggregators: modules mapping a (B,C,h,w) feature map to (B,D) L2-normalised descriptors.

Importing this package registers every aggregator; look them up by exact name with
`build_aggregator` / `list_aggregators`.
"""

from vpr.models.aggregators.avgpool import AvgPool
from vpr.models.aggregators.base import Aggregator
from vpr.models.aggregators.boq import BoQ, QueryBlock
from vpr.models.aggregators.classtoken import ClassToken
from vpr.models.aggregators.convap import ConvAP
from vpr.models.aggregators.convgem import ConvGeM
from vpr.models.aggregators.cosplace import CosPlace
from vpr.models.aggregators.gem import GeM, GeMPool, gem_pool
from vpr.models.aggregators.mixvpr import FeatureMixer, MixVPR
from vpr.models.aggregators.netvlad import NetVLAD
from vpr.models.aggregators.registry import (
    AGGREGATORS,
    build_aggregator,
    get_aggregator_class,
    list_aggregators,
    register_aggregator,
)
from vpr.models.aggregators.salad import SALAD, log_sinkhorn

__all__ = [
    "AGGREGATORS",
    "Aggregator",
    "AvgPool",
    "BoQ",
    "ClassToken",
    "ConvAP",
    "ConvGeM",
    "CosPlace",
    "FeatureMixer",
    "GeM",
    "GeMPool",
    "MixVPR",
    "NetVLAD",
    "QueryBlock",
    "SALAD",
    "build_aggregator",
    "gem_pool",
    "get_aggregator_class",
    "list_aggregators",
    "log_sinkhorn",
    "register_aggregator",
]
