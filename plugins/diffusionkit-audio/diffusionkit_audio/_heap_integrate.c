/* Phase Gradient Heap Integration's heap loop (Prusa, Balazs & Sondergaard 2017, Algorithm 1),
 * compiled: the same steps as diffusionkit_audio.phase_retrieval._heap_integrate_py, line for
 * line (so the same phase, bit for bit), without the second of numba start-up a command pays
 * before its first decode. Buffers are C-contiguous float64 (int64 for the visiting order). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A C-contiguous buffer of ``count`` 8-byte items: float64 (``integers`` 0) or int64 (1). */
static int
get_buffer(PyObject *obj, Py_buffer *view, int integers, Py_ssize_t count, int writable, const char *name)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) < 0)
        return -1;
    const char *format = view->format ? view->format : "B";
    int format_ok = integers ? (strcmp(format, "l") == 0 || strcmp(format, "q") == 0) : strcmp(format, "d") == 0;
    if (!format_ok || view->itemsize != 8 || view->len != count * 8) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd %s", name, count, integers ? "int64" : "float64");
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static void
integrate(const double *flat, const double *time_slope, const double *freq_slope, const int64_t *order,
          Py_ssize_t bins, Py_ssize_t frames, double tolerance, double *phase,
          unsigned char *done, double *keys, int64_t *items)
{
    Py_ssize_t n = bins * frames;
    for (Py_ssize_t c = 0; c < n; c++) {
        phase[c] = 0.0;
        done[c] = flat[c] < tolerance;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        int64_t start = order[k];
        if (done[start])
            continue;
        done[start] = 1;
        keys[0] = flat[start];
        items[0] = start;
        Py_ssize_t size = 1;
        while (size > 0) {
            int64_t here = items[0];
            size -= 1; /* pop: move the last entry down from the top */
            double key = keys[size];
            int64_t item = items[size];
            Py_ssize_t i = 0;
            while (2 * i + 1 < size) {
                Py_ssize_t child = 2 * i + 1;
                if (child + 1 < size && keys[child + 1] > keys[child])
                    child += 1;
                if (keys[child] <= key)
                    break;
                keys[i] = keys[child];
                items[i] = items[child];
                i = child;
            }
            if (size > 0) {
                keys[i] = key;
                items[i] = item;
            }
            int64_t f = here / frames, t = here % frames;
            for (int step = 0; step < 4; step++) { /* next and previous frame, next and previous bin */
                int64_t there;
                int inside;
                const double *slope;
                if (step == 0) {
                    there = here + 1; inside = t + 1 < frames; slope = time_slope;
                } else if (step == 1) {
                    there = here - 1; inside = t >= 1; slope = time_slope;
                } else if (step == 2) {
                    there = here + frames; inside = f + 1 < bins; slope = freq_slope;
                } else {
                    there = here - frames; inside = f >= 1; slope = freq_slope;
                }
                if (!inside || done[there])
                    continue;
                double change = 0.5 * (slope[here] + slope[there]);
                phase[there] = phase[here] + (step % 2 == 0 ? change : -change);
                done[there] = 1;
                i = size; /* push: move it up from the bottom */
                size += 1;
                while (i > 0 && keys[(i - 1) / 2] < flat[there]) {
                    keys[i] = keys[(i - 1) / 2];
                    items[i] = items[(i - 1) / 2];
                    i = (i - 1) / 2;
                }
                keys[i] = flat[there];
                items[i] = there;
            }
        }
    }
}

static PyObject *
heap_integrate(PyObject *self, PyObject *args)
{
    PyObject *mag_obj, *dt_obj, *df_obj, *order_obj, *out_obj;
    Py_ssize_t bins, frames;
    double tolerance;
    if (!PyArg_ParseTuple(args, "OOOOnndO", &mag_obj, &dt_obj, &df_obj, &order_obj, &bins, &frames, &tolerance,
                          &out_obj))
        return NULL;
    if (bins < 0 || frames < 0 || (frames > 0 && bins > PY_SSIZE_T_MAX / frames)) {
        PyErr_SetString(PyExc_ValueError, "bins and frames must be non-negative and their product must fit");
        return NULL;
    }
    Py_ssize_t n = bins * frames;
    Py_buffer mag, dt, df, order, out;
    if (get_buffer(mag_obj, &mag, 0, n, 0, "magnitude") < 0)
        return NULL;
    if (get_buffer(dt_obj, &dt, 0, n, 0, "dphase_time") < 0)
        goto fail_mag;
    if (get_buffer(df_obj, &df, 0, n, 0, "dphase_freq") < 0)
        goto fail_dt;
    if (get_buffer(order_obj, &order, 1, n, 0, "order") < 0)
        goto fail_df;
    if (get_buffer(out_obj, &out, 0, n, 1, "out") < 0)
        goto fail_order;
    const int64_t *visit = (const int64_t *)order.buf;
    for (Py_ssize_t k = 0; k < n; k++) {
        if (visit[k] < 0 || visit[k] >= n) {
            PyErr_SetString(PyExc_ValueError, "order holds an index outside the spectrogram");
            goto fail_out;
        }
    }
    unsigned char *done = malloc(n > 0 ? (size_t)n : 1);
    double *keys = malloc(sizeof(double) * (n > 0 ? (size_t)n : 1));
    int64_t *items = malloc(sizeof(int64_t) * (n > 0 ? (size_t)n : 1));
    if (!done || !keys || !items) {
        free(done); free(keys); free(items);
        PyErr_NoMemory();
        goto fail_out;
    }
    Py_BEGIN_ALLOW_THREADS
    integrate((const double *)mag.buf, (const double *)dt.buf, (const double *)df.buf, visit, bins, frames,
              tolerance, (double *)out.buf, done, keys, items);
    Py_END_ALLOW_THREADS
    free(done); free(keys); free(items);
    PyBuffer_Release(&out); PyBuffer_Release(&order); PyBuffer_Release(&df); PyBuffer_Release(&dt);
    PyBuffer_Release(&mag);
    Py_RETURN_NONE;
fail_out:
    PyBuffer_Release(&out);
fail_order:
    PyBuffer_Release(&order);
fail_df:
    PyBuffer_Release(&df);
fail_dt:
    PyBuffer_Release(&dt);
fail_mag:
    PyBuffer_Release(&mag);
    return NULL;
}

static PyMethodDef methods[] = {
    {"heap_integrate", heap_integrate, METH_VARARGS,
     "heap_integrate(magnitude, dphase_time, dphase_freq, order, bins, frames, tolerance, out): "
     "PGHI's heap loop over C-contiguous float64 buffers (order: int64), writing the phase into out."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_heap_integrate", NULL, -1, methods};

PyMODINIT_FUNC
PyInit__heap_integrate(void)
{
    return PyModule_Create(&module);
}
