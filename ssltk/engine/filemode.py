"""The mode of a run's files. A leaf module (it imports nothing of ssltk), so that every writer can use it without
tying the modules that write files into one import circle."""
import os


def plain_file_mode() -> int:
    """The mode ``open()`` gives a new file under this process's umask: every file of a run gets it, those written
    atomically through ``mkstemp`` (created 0600) included, so a run's files share one mode."""
    return 0o666 & ~_umask()


def _umask() -> int:
    # Linux states it in /proc without changing it; elsewhere it is set and put back at once (os.umask has no
    # read-only form), a moment in which another thread's new file would get mode 0666
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
