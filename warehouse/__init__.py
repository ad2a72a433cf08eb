"""Warehouse: the DuckLake catalog, tables, snapshots, SQL, blends and exports."""

from dataengine.warehouse.lake import Warehouse, WarehouseConfig, init_warehouse, read_config, rewrite_time_travel
from dataengine.warehouse.models import ModelRecord, list_models, register_model, resolve_model

__all__ = [
    "Warehouse", "WarehouseConfig", "init_warehouse", "read_config", "rewrite_time_travel",
    "ModelRecord", "list_models", "register_model", "resolve_model",
]
