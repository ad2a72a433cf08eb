"""Warehouse: the DuckLake catalog, tables, snapshots, SQL, blends and exports."""

from warehouse.lake import Warehouse, WarehouseConfig, init_warehouse, read_config, rewrite_time_travel

__all__ = ["Warehouse", "WarehouseConfig", "init_warehouse", "read_config", "rewrite_time_travel"]
