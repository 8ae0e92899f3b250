"""fleetlink"""
