"""What the rider sees and hears: LED and buzzer patterns, as timings.

The core names a pattern; drivers (RPi.GPIO on the Pi, machine.Pin on the
Pico, the simulators' terminal view) play it from these tables, so every
unit looks and sounds the same. Plain data; runs on MicroPython.
"""

# LED patterns: None is steady on, () is off, otherwise (on_ms, off_ms) repeating.
OFF = "off"
ON = "on"
BLINK = "blink"  # about 1 Hz: waiting for the command room
FLASH = "flash"  # 4 Hz: attention (SOS only sent, assignment pending)

LED_PATTERNS = {
    OFF: (),
    ON: None,
    BLINK: (500, 500),
    FLASH: (125, 125),
}

# Buzzer patterns: alternating on/off durations in ms, starting with on, played once.
CLICK = "click"  # a press registered
SOS_SENT = "sos_sent"  # the SOS is raised and on its way
RECEIVED = "received"  # the gateway has stored it
ACKNOWLEDGED = "acknowledged"  # a dispatcher has the SOS
ASSIGNMENT = "assignment"  # sent to an incident: look at the unit

BUZZER_PATTERNS = {
    CLICK: (40,),
    SOS_SENT: (400, 150, 400, 150, 400),
    RECEIVED: (120,),
    ACKNOWLEDGED: (120, 120, 120),
    ASSIGNMENT: (200, 100, 200, 100, 200, 600, 200, 100, 200, 100, 200),
}

# The LEDs a unit has besides one per status button.
SOS_LED = "sos"
GPS_LED = "gps"
LINK_LED = "link"
