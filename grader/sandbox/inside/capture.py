"""Output capture: the student's stdout and stderr, kept up to a limit."""


class BoundedWriter:
    """A text stream keeping the first `limit` characters written and counting the rest."""

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, limit):
        self.limit, self.parts, self.kept, self.dropped = limit, [], 0, 0

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        room = self.limit - self.kept
        if room > 0:
            self.parts.append(text[:room])
            self.kept += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        pass

    def isatty(self):
        return False

    def readable(self):
        return False

    def writable(self):
        return True

    def take(self):
        text = "".join(self.parts).encode("utf-8", "backslashreplace").decode("utf-8")
        dropped = self.dropped
        self.parts, self.kept, self.dropped = [], 0, 0
        return text, dropped
