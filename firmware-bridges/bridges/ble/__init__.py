"""BLE wristband protocol code: the authenticated advert codec, AD-structure parsing, the serial
bridge line codec (all sans-IO), and thin bleak / pyserial transports that only move bytes."""
