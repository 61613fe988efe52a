#include <Python.h>
#include <stdio.h>

/* MarkupSafe's C module, compiled from its sdist with the devkit's compiler and flags: no dlopen on WASI, so
   a program that embeds Python links the extension modules it uses and names them in the inittab. */
PyMODINIT_FUNC PyInit__speedups(void);

/* Runs Python code that uses json, sqlite3 and the extension, and returns what it computed to C. */
int main(void) {
    if (PyImport_AppendInittab("markupsafe._speedups", PyInit__speedups) < 0) return 1;
    Py_Initialize();
    PyObject *globals = PyDict_New();
    PyObject *result = PyRun_String(
        "import json, sqlite3, markupsafe, markupsafe._speedups\n"
        "assert markupsafe._escape_inner is markupsafe._speedups._escape_inner  # the C code\n"
        "db = sqlite3.connect(':memory:')\n"
        "total = db.execute('select sum(value) from json_each(?)', (json.dumps([19, 23]),)).fetchone()[0]\n"
        "escaped = str(markupsafe.escape('<b>%d</b>' % total))\n",
        Py_file_input, globals, globals);
    if (result == NULL) { PyErr_Print(); return 1; }
    long total = PyLong_AsLong(PyDict_GetItemString(globals, "total"));
    printf("embedded python %s computed %ld, escaped %s\n", Py_GetVersion(), total,
           PyUnicode_AsUTF8(PyDict_GetItemString(globals, "escaped")));
    Py_DECREF(result);
    Py_DECREF(globals);
    return Py_FinalizeEx() < 0 ? 1 : (int)(total != 42);
}
