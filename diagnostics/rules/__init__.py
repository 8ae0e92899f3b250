"""Stream rule families, one module each; :mod:`diagnostics.stream_rules` runs them per sample.

- :mod:`.coolant`: overheating now (``coolant_overheating``);
- :mod:`.tires`: slow leak below the cold failure pressure and sudden loss (``tire_slow_leak``,
  ``tire_pressure_loss``);
- :mod:`.low_voltage`: 12 V resting voltage (``low_voltage_battery_degradation``);
- :mod:`.traction_battery`: state of health (``traction_battery_degradation``);
- :mod:`.brake_pads`: pad wear (``brake_pad_wear``);
- :mod:`.service`: service due (``service_due``);
- :mod:`.dtc`: trouble codes set and cleared (``dtc``).

Shared by them: :mod:`.base` (per-vehicle state, the emitter), :mod:`.hysteresis` (the
raise / clear state machine) and :mod:`.threshold` (one signal against one threshold).
"""
