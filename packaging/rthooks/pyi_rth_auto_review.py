# PyInstaller runtime hook of auto-review: runs in the application process before the entry
# script imports anything else. The application must end when its one-file bootloader parent is
# killed (SIGKILL cannot be forwarded), or it would linger holding its port and database.
from auto_review._frozen import tie_to_bootloader

tie_to_bootloader()
