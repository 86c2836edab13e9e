"""Serial 2D LiDAR scanners: sans-IO codecs (bytes in, typed frames out) and a thin pyserial
transport.

- :mod:`bridges.lidar.ld06`: LDROBOT LD06 / LD19 47-byte measurement frames (0x54 header,
  12 points, CRC-8).
- :mod:`bridges.lidar.rplidar`: SLAMTEC RPLIDAR A-series requests, response descriptors and the
  5-byte nodes of the legacy standard ``SCAN`` response.
- :mod:`bridges.lidar.drivers`: one driver per scanner model, registered from a key; each turns
  bytes into :class:`~bridges.lidar.drivers.SampleBlock` of (angle, distance, intensity).
- :mod:`bridges.lidar.transport`: pyserial port handling (open, reopen when the device
  disappears and comes back); it only moves bytes.
"""
