# PyInstaller runtime hook of auto-review: runs in the application process before the entry
# script imports anything else. The application must end when its one-file bootloader parent is
# killed (SIGKILL cannot be forwarded), or it would linger holding its port and database. It
# must not run from an unpacked directory another user could swap (TMPDIR; finding F91), and
# keeps /tmp's age-based clean-up out of it while it runs (finding F92).
from auto_review._frozen import hold_unpack_dir, refuse_unsafe_unpack_dir, tie_to_bootloader

tie_to_bootloader()
refuse_unsafe_unpack_dir()
hold_unpack_dir()
