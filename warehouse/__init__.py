"""Warehouse: the DuckLake catalog, tables, snapshots, SQL, blends and exports."""

from dataengine.warehouse.lake import Warehouse, WarehouseConfig, init_warehouse, read_config, rewrite_time_travel
from dataengine.core.models import ModelRecord
from dataengine.warehouse.models import list_models, register_model, resolve_model

__all__ = [
    "Warehouse", "WarehouseConfig", "init_warehouse", "read_config", "rewrite_time_travel",
    "ModelRecord", "list_models", "register_model", "resolve_model",
]
