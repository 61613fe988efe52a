#include <Python.h>
#include <stdio.h>

/* Runs Python code that uses json and sqlite3, and returns what it computed to C. */
int main(void) {
    Py_Initialize();
    PyObject *globals = PyDict_New();
    PyObject *result = PyRun_String(
        "import json, sqlite3\n"
        "db = sqlite3.connect(':memory:')\n"
        "total = db.execute('select sum(value) from json_each(?)', (json.dumps([19, 23]),)).fetchone()[0]\n",
        Py_file_input, globals, globals);
    if (result == NULL) { PyErr_Print(); return 1; }
    long total = PyLong_AsLong(PyDict_GetItemString(globals, "total"));
    printf("embedded python %s computed %ld\n", Py_GetVersion(), total);
    Py_DECREF(result);
    Py_DECREF(globals);
    return Py_FinalizeEx() < 0 ? 1 : (int)(total != 42);
}
