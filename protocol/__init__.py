"""Wire contract v1 between vehicles and the FleetLink cloud. No I/O."""

from protocol.errors import InvalidTopicError, InvalidVinError, ProtocolError
from protocol.vin import Vin

__all__ = ["InvalidTopicError", "InvalidVinError", "ProtocolError", "Vin"]
