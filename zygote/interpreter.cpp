// Python.h first: it sets feature macros the C library headers must see.
#define PY_SSIZE_T_CLEAN
#include <Python.h>
// clang-format off
#include "zygote/interpreter.hpp"
// clang-format on

#include <unistd.h>

#include <fstream>
#include <sstream>

namespace pysandbox::zygote {

namespace {

PyObject* g_bootstrap = nullptr;

// The pending Python exception as text (clears it).
std::string python_error() {
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  std::string text = "unknown error";
  if (value != nullptr) {
    if (PyObject* s = PyObject_Str(value)) {
      if (const char* u = PyUnicode_AsUTF8(s)) text = u;
      Py_DECREF(s);
    }
  }
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(tb);
  PyErr_Clear();
  return text;
}

}  // namespace

std::string error_hello(const std::string& what) {
  std::string out = "{\"ok\": false, \"error\": \"";
  for (char c : what) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out + "\"}";
}

std::string start_interpreter(const InterpreterOptions& options) {
  std::ifstream in(options.bootstrap_path);
  if (!in) return error_hello("cannot read " + options.bootstrap_path);
  std::stringstream source;
  source << in.rdbuf();

  PyConfig config;
  PyConfig_InitIsolatedConfig(&config);
  config.buffered_stdio = 0;  // -u: the child's print() reaches its pipe at once
  config.write_bytecode = 0;  // -B
  config.parse_argv = 0;
  config.install_signal_handlers = 1;  // what a fresh interpreter has (SIGINT, SIGPIPE ignored)
  PyStatus status =
      PyConfig_SetBytesString(&config, &config.program_name, options.python_path.c_str());
  if (!PyStatus_Exception(status)) {
    status = PyConfig_SetBytesString(&config, &config.executable, options.python_path.c_str());
  }
  if (!PyStatus_Exception(status)) {
    char arg0[] = "-c";
    char* argv[] = {arg0};
    status = PyConfig_SetBytesArgv(&config, 1, argv);
  }
  if (!PyStatus_Exception(status)) status = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  if (PyStatus_Exception(status)) {
    return error_hello(std::string("Python initialisation: ") +
                       (status.err_msg != nullptr ? status.err_msg : "failed"));
  }

  PyObject* code =
      Py_CompileString(source.str().c_str(), options.bootstrap_path.c_str(), Py_file_input);
  if (code == nullptr) return error_hello("bootstrap: " + python_error());
  g_bootstrap = PyImport_ExecCodeModule("pysandbox_zygote", code);
  Py_DECREF(code);
  if (g_bootstrap == nullptr) return error_hello("bootstrap: " + python_error());

  PyObject* names = PyList_New(0);
  for (const auto& name : options.preload) {
    PyObject* s = PyUnicode_FromString(name.c_str());
    PyList_Append(names, s);
    Py_DECREF(s);
  }
  PyObject* hello =
      PyObject_CallMethod(g_bootstrap, "start", "sO", options.runner_path.c_str(), names);
  Py_DECREF(names);
  if (hello == nullptr) return error_hello("start: " + python_error());
  const char* text = PyUnicode_AsUTF8(hello);
  std::string out = text != nullptr ? text : error_hello("start: " + python_error());
  Py_DECREF(hello);
  return out;
}

void before_fork() noexcept { PyOS_BeforeFork(); }

void after_fork_parent() noexcept { PyOS_AfterFork_Parent(); }

void run_child() noexcept {
  PyOS_AfterFork_Child();
  PyObject* r = PyObject_CallMethod(g_bootstrap, "child_main", nullptr);
  // child_main ends in os._exit; reaching here means the runner itself broke.
  if (r == nullptr) PyErr_Print();
  ::_exit(1);
}

}  // namespace pysandbox::zygote
