"""The analog tile's column circuit: IR-drop on the column wires (``ladder``), checked against a dense nodal
solve (``reference``) and ngspice (``spice``). Spec tile-model.md, section 3."""

from aimc_runner.circuit.ladder import column_charge, effective_conductance, time_stepped_charge, transfer_factors

__all__ = ["column_charge", "effective_conductance", "time_stepped_charge", "transfer_factors"]
