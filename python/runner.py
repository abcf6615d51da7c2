# pysandbox runner: runs inside the sandbox as `python3 -I -B -u -c <this file>` (cold start), or
# is imported by a zygote whose forked, sandboxed children call child_main() (warm start).
#
# fd 0/1/2 are the script's real stdin/stdout/stderr (captured by the server).
# fd 3 holds the script source (a sealed memfd); fd 4 is the result channel: exactly one JSON
# object is written there, then the process exits with os._exit so that leftover threads or
# atexit handlers of the script cannot delay or alter the outcome.
#
# Result channel protocol:
#   {"status": "ok", "result": <value>}
#   {"status": "error", "error_type": "<code>", "message": "<sentence>", "trace": "<traceback>"}
# error_type is one of: syntax_error, no_main, main_not_callable, exception,
# not_json_serializable, memory_limit.

import json
import math
import os
import sys
import traceback
import types

SCRIPT_FD = 3
RESULT_FD = 4
SCRIPT_NAME = "<script>"
MAX_DEPTH = 200
INT_MIN = -(2**63)
INT_MAX = 2**64 - 1


class NotJson(Exception):
    pass


def _encode(payload):
    text = json.dumps(payload, ensure_ascii=False, allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        if payload.get("status") == "ok":
            # A lone surrogate (e.g. "\ud800") in the result: UTF-8 cannot carry it, and
            # replacing it would change the value silently.
            bad = text[exc.start:exc.end]
            return _encode(_error(
                "not_json_serializable",
                "result contains the lone surrogate %s, which UTF-8 cannot encode"
                % ", ".join("U+%04X" % ord(c) for c in bad)))
        # Messages and tracebacks are text for a person: keep the code point visible.
        return text.encode("utf-8", "backslashreplace")


def _emit(payload):
    data = _encode(payload)
    view = memoryview(data)
    while view:
        written = os.write(RESULT_FD, view)
        view = view[written:]
    os.close(RESULT_FD)


def _error(error_type, message, trace=""):
    return {"status": "error", "error_type": error_type, "message": message, "trace": trace}


def _type_name(value):
    cls = type(value)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else module + "." + cls.__qualname__


def _check_json(value, path="result", depth=0):
    """Exact-type walk: numpy/pandas values are refused by name instead of being converted
    (np.float64 is a float subclass and json would silently accept it)."""
    if depth > MAX_DEPTH:
        raise NotJson("%s is nested deeper than %d levels" % (path, MAX_DEPTH))
    cls = type(value)
    if value is None or cls is bool or cls is str:
        return
    if cls is int:
        if not INT_MIN <= value <= INT_MAX:
            raise NotJson("%s is an integer too large for JSON (beyond 64 bits)" % path)
        return
    if cls is float:
        if math.isnan(value) or math.isinf(value):
            raise NotJson("%s is %r, which JSON cannot represent" % (path, value))
        return
    if cls is list or cls is tuple:
        for index, item in enumerate(value):
            _check_json(item, "%s[%d]" % (path, index), depth + 1)
        return
    if cls is dict:
        for key, item in value.items():
            # Like json.dumps: str keys, and int/float/bool/None keys written as strings
            # (df.to_dict() gives int keys), but nothing else.
            if key is not None and type(key) not in (str, int, float, bool):
                raise NotJson(
                    "%s has a key of type %s; JSON object keys must be str, int, float, bool or None"
                    % (path, _type_name(key))
                )
            if type(key) is float and (math.isnan(key) or math.isinf(key)):
                raise NotJson("%s has the key %r, which JSON cannot represent" % (path, key))
            _check_json(item, "%s[%r]" % (path, key), depth + 1)
        return
    hint = ""
    if cls.__module__.split(".")[0] in ("numpy", "pandas"):
        hint = " (convert it explicitly, e.g. int(x), float(x), arr.tolist(), df.to_dict())"
    raise NotJson("%s is of type %s, which is not JSON serializable%s" % (path, _type_name(value), hint))


def _script_traceback(exc):
    """The traceback without the runner's own frames: only the script and what it called."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != SCRIPT_NAME:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _exception_outcome(exc, where):
    if isinstance(exc, MemoryError):
        return _error("memory_limit", "the script ran out of memory (MemoryError) " + where,
                      _script_traceback(exc))
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return _error("exception", "%s raised %s" % (where, text), _script_traceback(exc))


_owner = None


def _forked_child():
    # Only the script's own process reports: a process it forks (os.fork, multiprocessing) has
    # no result channel, so returning from main() or raising in it cannot replace the answer.
    try:
        os.close(RESULT_FD)
    except OSError:
        pass


def _read_script():
    # Straight os.read calls on the memfd: no file object, no buffering layer.
    chunks = []
    while True:
        chunk = os.read(SCRIPT_FD, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(SCRIPT_FD)
    return b"".join(chunks)


def _run():
    global _owner
    _owner = os.getpid()
    os.register_at_fork(after_in_child=_forked_child)
    source = _read_script()
    try:
        code = compile(source, SCRIPT_NAME, "exec", dont_inherit=True)
    except SyntaxError as exc:
        line = " (line %s)" % exc.lineno if exc.lineno else ""
        return _error("syntax_error", "%s%s" % (exc.msg, line),
                      "".join(traceback.format_exception_only(type(exc), exc)))
    except (ValueError, UnicodeDecodeError) as exc:  # null bytes, undecodable source
        return _error("syntax_error", str(exc))

    module = types.ModuleType("__sandbox__")
    module.__file__ = SCRIPT_NAME
    sys.modules["__sandbox__"] = module
    try:
        exec(code, module.__dict__)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt are the script's too
        return _exception_outcome(exc, "the script's top level")

    if "main" not in module.__dict__:
        return _error("no_main", "the script does not define main()")
    entry = module.__dict__["main"]
    if not callable(entry):
        return _error("main_not_callable",
                      "main is of type %s, not a function" % _type_name(entry))
    try:
        result = entry()
    except BaseException as exc:
        return _exception_outcome(exc, "main()")

    try:
        _check_json(result)
    except NotJson as exc:
        return _error("not_json_serializable", str(exc))
    except RecursionError:
        return _error("not_json_serializable", "result is nested too deeply")
    return {"status": "ok", "result": result}


def _finish(outcome):
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    if os.getpid() != _owner:
        # A forked child came back through main(): it ends like a process would, silently.
        os._exit(0 if outcome.get("status") == "ok" else 1)
    try:
        _emit(outcome)
    except MemoryError:
        _emit(_error("memory_limit", "the result does not fit in the memory limit"))
    except (ValueError, TypeError, RecursionError) as exc:
        _emit(_error("not_json_serializable", "result could not be encoded: %s" % exc))
    os._exit(0)


def warm_up():
    """In a sandbox made ahead of its run (zygote.py): the success path once on a script of our
    own, so that the memory it writes is copied from the zygote now, not on the run's clock.
    Touches no fd and leaves no module, global or file behind."""
    code = compile('def main():\n    return {"ok": [1, 2.5, "x", None, True]}\n', SCRIPT_NAME,
                   "exec", dont_inherit=True)
    module = types.ModuleType("__sandbox__")
    module.__file__ = SCRIPT_NAME
    exec(code, module.__dict__)
    result = module.__dict__["main"]()
    _check_json(result)
    _encode({"status": "ok", "result": result})


def child_main():
    """Entry point in a child forked from a zygote (pysandbox-zygote), already sandboxed."""
    _finish(_run())


if __name__ == "__main__":
    _finish(_run())
