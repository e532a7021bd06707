"""The simulated node: for the emulator's machines, the fleet simulator, the demo and bench."""
