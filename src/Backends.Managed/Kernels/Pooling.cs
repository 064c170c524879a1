using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Lockstep.Backends.Managed.Threading;

namespace Lockstep.Backends.Managed.Kernels;

// N batch, C channels, H×W input plane, F_h×F_w window, S stride, P padding (top/left; bottom/right only bound the
// output size and CountIncludePad's divisor), D dilation, H'×W' output plane.
// Window (oh, ow) has taps (oh·S_h − P_h + i·D_h, ow·S_w − P_w + j·D_w), i < F_h, j < F_w; taps in the padding are never read.

/// <summary>POOL: max (with switches), average and L2 over windows of each plane, and their backward.</summary>
internal static class Pooling
{
    /// <summary>The window's taps inside the input: rows R0, R0 + D_h, … (Rows of them), columns C0, C0 + D_w, … (Cols).</summary>
    private readonly record struct Window(int R0, int Rows, int C0, int Cols, int Dh, int Dw)
    {
        public bool IsEmpty => Rows <= 0 || Cols <= 0;
    }

    private static Window Clip(PoolSpec spec, int oh, int ow, int h, int w)
    {
        var (r0, rows) = Taps(oh * spec.StrideH - spec.PadH, spec.KernelH, spec.DilationH, h);
        var (c0, cols) = Taps(ow * spec.StrideW - spec.PadW, spec.KernelW, spec.DilationW, w);
        return new(r0, rows, c0, cols, spec.DilationH, spec.DilationW);
    }

    /// <summary>The first tap start + t·d inside [0, size) and how many taps t &lt; f lie inside.</summary>
    private static (int First, int Count) Taps(int start, int f, int d, int size)
    {
        int lo = start >= 0 ? 0 : (-start + d - 1) / d;
        int hi = start > size - 1 ? 0 : Math.Min(f, (size - 1 - start) / d + 1);
        return (start + lo * d, hi - lo);
    }

    // y = max over the window; switch = h·W + w of the first maximum in row-major order, a NaN (the last one) winning.
    // Each output row runs scalar at the edges and, where the window's columns all lie inside the input and the
    // stride is 1 or 2, a vector of outputs at once: the same comparisons in the same tap order, lane by lane.
    public static void MaxForward<T>(ReadOnlySpan<T> x, int planes, int h, int w, PoolSpec spec, int outH, int outW,
        Span<T> y, Span<long> switches) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (vLo, vHi) = VectorColumns<T>(spec, w, outW);
        Span<int> offsets = stackalloc int[Math.Min(spec.KernelH * spec.KernelW, 256)];
        for (int p = 0; p < planes; p++)
        {
            var xp = x.Slice(p * h * w, h * w);
            int o = p * outH * outW;
            for (int oh = 0; oh < outH; oh++, o += outW)
            {
                var yRow = y.Slice(o, outW);
                var sRow = switches.Slice(o, outW);
                int hi = vHi;
                if (vHi > vLo)
                {
                    var (r0, rows) = Taps(oh * spec.StrideH - spec.PadH, spec.KernelH, spec.DilationH, h);
                    if (rows > 0 && rows * spec.KernelW <= offsets.Length)
                    {
                        MaxRow(xp, w, spec, r0, rows, vLo, vHi, yRow, sRow, offsets);
                    }
                    else
                    {
                        hi = vLo;
                    }
                }
                else
                {
                    hi = vLo;
                }
                for (int ow = 0; ow < outW; ow++)
                {
                    if (ow == vLo) ow = Math.Max(ow, hi);
                    if (ow >= outW) break;
                    MaxWindow(xp, h, w, spec, oh, ow, out yRow[ow], out sRow[ow]);
                }
            }
        }
    }

    private static void MaxWindow<T>(ReadOnlySpan<T> xp, int h, int w, PoolSpec spec, int oh, int ow, out T y, out long arg)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var win = Clip(spec, oh, ow, h, w);
        // libtorch's CPU rule: start at −∞ with the window's first index; take v when v > max or v is NaN.
        T max = T.NegativeInfinity;
        int best = win.R0 * w + win.C0;
        for (int r = 0, ih = win.R0; r < win.Rows; r++, ih += win.Dh)
        {
            for (int q = 0, iw = win.C0; q < win.Cols; q++, iw += win.Dw)
            {
                T v = xp[ih * w + iw];
                if (v > max || T.IsNaN(v))
                {
                    max = v;
                    best = ih * w + iw;
                }
            }
        }
        y = max;
        arg = best;
    }

    /// <summary>
    /// The outputs [lo, hi) of a row whose window columns all lie inside the input, when a vector path exists (stride
    /// 1 or 2, at least one full vector of such outputs); else (0, 0).
    /// </summary>
    private static (int Lo, int Hi) VectorColumns<T>(PoolSpec spec, int w, int outW) where T : unmanaged
    {
        int lanes = Lanes<T>();
        if (lanes == 0 || spec.StrideW > 2) return (0, 0);
        int lo = spec.PadW <= 0 ? 0 : (spec.PadW + spec.StrideW - 1) / spec.StrideW;
        int last = w - 1 + spec.PadW - (spec.KernelW - 1) * spec.DilationW;   // ow·S ≤ last
        int hi = last < 0 ? 0 : Math.Min(outW, last / spec.StrideW + 1);
        return hi - lo >= lanes ? (lo, hi) : (0, 0);
    }

    private static int Lanes<T>() where T : unmanaged =>
        Vector512.IsHardwareAccelerated ? Vector512<T>.Count : Vector256.IsHardwareAccelerated ? Vector256<T>.Count : 0;

    // Outputs [lo, hi) of one row, a vector of them at a time (the last vector overlaps the one before, rewriting
    // identical values). Tap t = r·F_w + q is carried in the lanes as a number of type T (exact: t < 256).
    private static void MaxRow<T>(ReadOnlySpan<T> xp, int w, PoolSpec spec, int r0, int rows, int lo, int hi,
        Span<T> y, Span<long> switches, Span<int> offsets) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int cols = spec.KernelW, s = spec.StrideW, dw = spec.DilationW, dh = spec.DilationH;
        for (int r = 0; r < rows; r++)
        {
            for (int q = 0; q < cols; q++) offsets[r * cols + q] = r * dh * w + q * dw;
        }
        int lanes = Lanes<T>();
        Span<T> taps = stackalloc T[64];
        ref T px = ref MemoryMarshal.GetReference(xp);
        for (int ow = lo; ; ow += lanes)
        {
            if (ow > hi - lanes) ow = hi - lanes;
            int origin = r0 * w + ow * s - spec.PadW;   // tap 0 of output ow
            // A stride-2 vector reads 2·lanes elements from each tap; the odd ones past the row may lie past the plane.
            if (s == 2 && origin + offsets[rows * cols - 1] + 2 * lanes > xp.Length)
            {
                for (int k = ow; k < hi; k++) MaxWindowInside(xp, w, spec, r0, rows, k, out y[k], out switches[k]);
                return;
            }
            if (Vector512.IsHardwareAccelerated)
            {
                var max = Vector512.Create(T.NegativeInfinity);
                var arg = Vector512<T>.Zero;
                for (int t = 0; t < rows * cols; t++)
                {
                    ref T at = ref Unsafe.Add(ref px, origin + offsets[t]);
                    var v = s == 1 ? Vector512.LoadUnsafe(ref at) : LoadEven512(ref at);
                    var take = Vector512.GreaterThan(v, max) | ~Vector512.Equals(v, v);
                    max = Vector512.ConditionalSelect(take, v, max);
                    arg = Vector512.ConditionalSelect(take, Vector512.Create(T.CreateTruncating(t)), arg);
                }
                max.StoreUnsafe(ref MemoryMarshal.GetReference(y), (nuint)ow);
                arg.StoreUnsafe(ref MemoryMarshal.GetReference(taps));
            }
            else
            {
                var max = Vector256.Create(T.NegativeInfinity);
                var arg = Vector256<T>.Zero;
                for (int t = 0; t < rows * cols; t++)
                {
                    ref T at = ref Unsafe.Add(ref px, origin + offsets[t]);
                    var v = s == 1 ? Vector256.LoadUnsafe(ref at) : LoadEven256(ref at);
                    var take = Vector256.GreaterThan(v, max) | ~Vector256.Equals(v, v);
                    max = Vector256.ConditionalSelect(take, v, max);
                    arg = Vector256.ConditionalSelect(take, Vector256.Create(T.CreateTruncating(t)), arg);
                }
                max.StoreUnsafe(ref MemoryMarshal.GetReference(y), (nuint)ow);
                arg.StoreUnsafe(ref MemoryMarshal.GetReference(taps));
            }
            for (int k = 0; k < lanes; k++) switches[ow + k] = origin + k * s + offsets[int.CreateTruncating(taps[k])];
            if (ow + lanes >= hi) return;
        }
    }

    // One output of the vector range, whose columns all lie inside the input (the scalar twin of MaxRow).
    private static void MaxWindowInside<T>(ReadOnlySpan<T> xp, int w, PoolSpec spec, int r0, int rows, int ow, out T y, out long arg)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T max = T.NegativeInfinity;
        int c0 = ow * spec.StrideW - spec.PadW;
        int best = r0 * w + c0;
        for (int r = 0, ih = r0; r < rows; r++, ih += spec.DilationH)
        {
            for (int q = 0, iw = c0; q < spec.KernelW; q++, iw += spec.DilationW)
            {
                T v = xp[ih * w + iw];
                if (v > max || T.IsNaN(v))
                {
                    max = v;
                    best = ih * w + iw;
                }
            }
        }
        y = max;
        arg = best;
    }

    // v[k] = src[2k]: the even elements of two consecutive vectors
    private static Vector512<T> LoadEven512<T>(ref T src) where T : unmanaged
    {
        var a = Vector512.LoadUnsafe(ref src);
        var b = Vector512.LoadUnsafe(ref src, (nuint)Vector512<T>.Count);
        if (typeof(T) == typeof(float))
        {
            var even = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 0, 2, 4, 6, 8, 10, 12, 14);
            return Vector512.Create(Vector512.Shuffle(a.As<T, float>(), even).GetLower(),
                Vector512.Shuffle(b.As<T, float>(), even).GetLower()).As<float, T>();
        }
        var evenD = Vector512.Create(0L, 2, 4, 6, 0, 2, 4, 6);
        return Vector512.Create(Vector512.Shuffle(a.As<T, double>(), evenD).GetLower(),
            Vector512.Shuffle(b.As<T, double>(), evenD).GetLower()).As<double, T>();
    }

    private static Vector256<T> LoadEven256<T>(ref T src) where T : unmanaged
    {
        var a = Vector256.LoadUnsafe(ref src);
        var b = Vector256.LoadUnsafe(ref src, (nuint)Vector256<T>.Count);
        if (typeof(T) == typeof(float))
        {
            var even = Vector256.Create(0, 2, 4, 6, 0, 2, 4, 6);
            return Vector256.Create(Vector256.Shuffle(a.As<T, float>(), even).GetLower(),
                Vector256.Shuffle(b.As<T, float>(), even).GetLower()).As<float, T>();
        }
        var evenD = Vector256.Create(0L, 2, 0, 2);
        return Vector256.Create(Vector256.Shuffle(a.As<T, double>(), evenD).GetLower(),
            Vector256.Shuffle(b.As<T, double>(), evenD).GetLower()).As<double, T>();
    }

    // dx[switch] += dy
    public static void MaxBackward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<long> switches, int planes, int h, int w, int outHw, Span<T> dx)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int plane = h * w;
        for (int p = 0; p < planes; p++)
        {
            // Cleared plane by plane, so the scatter finds the plane still in cache.
            var dxp = dx.Slice(p * plane, plane);
            dxp.Clear();
            for (int o = p * outHw; o < (p + 1) * outHw; o++)
            {
                long s = switches[o];
                if ((ulong)s >= (ulong)plane)
                {
                    throw new ArgumentException($"POOL backward: switch {o} is {s}, outside its {h}×{w} input plane; switches must come from the forward pass");
                }
                dxp[(int)s] += dy[o];
            }
        }
    }

    /// <summary>
    /// libtorch's and ONNX's avg_pool2d divisor: the taps inside the input, or, with CountIncludePad, those inside the
    /// padded extent [−P_begin, size + P_end) (taps past it, there only because of ceil mode, do not count).
    /// </summary>
    private static int Divisor(PoolSpec spec, int oh, int ow, int h, int w, Window inside)
    {
        if (!spec.CountIncludePad) return inside.Rows * inside.Cols;
        return PaddedTaps(oh * spec.StrideH - spec.PadH, spec.KernelH, spec.DilationH, h + spec.Padding.Bottom)
             * PaddedTaps(ow * spec.StrideW - spec.PadW, spec.KernelW, spec.DilationW, w + spec.Padding.Right);

        // Taps start + t·d (t < f) below end; the window never starts before the padded extent.
        static int PaddedTaps(int start, int f, int d, int end) => Math.Min(f, (end - start + d - 1) / d);
    }

    // y = (Σ_window x) / divisor
    public static void AverageForward<T>(ReadOnlySpan<T> x, int planes, int h, int w, PoolSpec spec, int outH, int outW, Span<T> y)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int p = 0; p < planes; p++)
        {
            var xp = x.Slice(p * h * w, h * w);
            int o = p * outH * outW;
            for (int oh = 0; oh < outH; oh++)
            {
                for (int ow = 0; ow < outW; ow++, o++)
                {
                    var win = Clip(spec, oh, ow, h, w);
                    if (win.IsEmpty) { y[o] = T.Zero; continue; }
                    T sum = T.Zero;
                    for (int r = 0, ih = win.R0; r < win.Rows; r++, ih += win.Dh)
                    {
                        for (int q = 0, iw = win.C0; q < win.Cols; q++, iw += win.Dw) sum += xp[ih * w + iw];
                    }
                    y[o] = sum / T.CreateTruncating(Divisor(spec, oh, ow, h, w, win));
                }
            }
        }
    }

    // dx[window] += dy / divisor
    public static void AverageBackward<T>(ReadOnlySpan<T> dy, int planes, int h, int w, PoolSpec spec, int outH, int outW, Span<T> dx)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int p = 0; p < planes; p++)
        {
            var dxp = dx.Slice(p * h * w, h * w);
            dxp.Clear();
            int o = p * outH * outW;
            for (int oh = 0; oh < outH; oh++)
            {
                for (int ow = 0; ow < outW; ow++, o++)
                {
                    var win = Clip(spec, oh, ow, h, w);
                    if (win.IsEmpty) continue;
                    T share = dy[o] / T.CreateTruncating(Divisor(spec, oh, ow, h, w, win));
                    for (int r = 0, ih = win.R0; r < win.Rows; r++, ih += win.Dh)
                    {
                        for (int q = 0, iw = win.C0; q < win.Cols; q++, iw += win.Dw) dxp[ih * w + iw] += share;
                    }
                }
            }
        }
    }

    // y = sqrt(Σ_window x²)
    public static void L2Forward<T>(ReadOnlySpan<T> x, int planes, int h, int w, PoolSpec spec, int outH, int outW, Span<T> y)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int p = 0; p < planes; p++)
        {
            var xp = x.Slice(p * h * w, h * w);
            int o = p * outH * outW;
            for (int oh = 0; oh < outH; oh++)
            {
                for (int ow = 0; ow < outW; ow++, o++)
                {
                    var win = Clip(spec, oh, ow, h, w);
                    T sum = T.Zero;
                    for (int r = 0, ih = win.R0; r < win.Rows; r++, ih += win.Dh)
                    {
                        for (int q = 0, iw = win.C0; q < win.Cols; q++, iw += win.Dw)
                        {
                            T v = xp[ih * w + iw];
                            sum += v * v;
                        }
                    }
                    y[o] = T.Sqrt(sum);
                }
            }
        }
    }

    // dx[window] += dy·x / y, nothing where y = 0
    public static void L2Backward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, ReadOnlySpan<T> y, int planes, int h, int w,
        PoolSpec spec, int outH, int outW, Span<T> dx) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int p = 0; p < planes; p++)
        {
            var xp = x.Slice(p * h * w, h * w);
            var dxp = dx.Slice(p * h * w, h * w);
            dxp.Clear();
            int o = p * outH * outW;
            for (int oh = 0; oh < outH; oh++)
            {
                for (int ow = 0; ow < outW; ow++, o++)
                {
                    if (y[o] == T.Zero) continue;
                    var win = Clip(spec, oh, ow, h, w);
                    for (int r = 0, ih = win.R0; r < win.Rows; r++, ih += win.Dh)
                    {
                        for (int q = 0, iw = win.C0; q < win.Cols; q++, iw += win.Dw)
                        {
                            int i = ih * w + iw;
                            dxp[i] += dy[o] * xp[i] / y[o];
                        }
                    }
                }
            }
        }
    }
}

/// <summary>The pooling kernels of <see cref="Pooling"/>, as <see cref="PoolingJob{T}"/> runs them.</summary>
internal enum PoolKernel
{
    MaxForward,
    MaxBackward,
    AverageForward,
    AverageBackward,
    L2Forward,
    L2Backward,
}

/// <summary>
/// One pooling call split over the workers by planes: item i takes planes [i·P/items, (i+1)·P/items). Planes are
/// independent, so the result is the same bits however the items fall on the threads. Operands pinned by the caller.
/// </summary>
internal sealed unsafe class PoolingJob<T> : IParallelWork where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>Below this many input elements a call stays on its thread (the hand-over costs more than it saves).</summary>
    private const int MinParallelElements = 1 << 15;

    private PoolKernel _kernel;
    private PoolSpec? _spec;
    private int _planes, _h, _w, _outH, _outW, _items;
    private T* _x, _y, _dy, _dx;
    private long* _switches;

    /// <summary>Runs <paramref name="kernel"/> over all planes; spans that the kernel does not use may be empty.</summary>
    public static void Run(WorkerPool workers, PoolKernel kernel, PoolSpec spec, int planes, int h, int w, int outH, int outW,
        ReadOnlySpan<T> x, Span<T> y, Span<long> switches, ReadOnlySpan<T> dy, Span<T> dx)
    {
        long elements = (long)planes * h * w;
        int items = workers.Threads == 1 || elements < MinParallelElements ? 1 : Math.Min(planes, 4 * workers.Threads);
        var job = Cache<PoolingJob<T>>.Rent();
        fixed (T* px = x, py = y, pdy = dy, pdx = dx)
        fixed (long* ps = switches)
        {
            try
            {
                (job._kernel, job._spec, job._planes, job._h, job._w, job._outH, job._outW, job._items) =
                    (kernel, spec, planes, h, w, outH, outW, items);
                job._x = px;
                job._y = py;
                job._switches = ps;
                job._dy = pdy;
                job._dx = pdx;
                workers.For(items, job);
            }
            finally
            {
                job._spec = null;
                job._x = job._y = job._dy = job._dx = null;
                job._switches = null;
                Cache<PoolingJob<T>>.Return(job);
            }
        }
    }

    public void Run(int index, int worker)
    {
        int p0 = (int)((long)index * _planes / _items), p1 = (int)((long)(index + 1) * _planes / _items);
        int count = p1 - p0, plane = _h * _w, outPlane = _outH * _outW;
        if (count == 0) return;
        var spec = _spec!;
        ReadOnlySpan<T> X() => new(_x + (long)p0 * plane, count * plane);
        Span<T> Y() => new(_y + (long)p0 * outPlane, count * outPlane);
        ReadOnlySpan<T> Dy() => new(_dy + (long)p0 * outPlane, count * outPlane);
        Span<T> Dx() => new(_dx + (long)p0 * plane, count * plane);
        switch (_kernel)
        {
            case PoolKernel.MaxForward:
                Pooling.MaxForward<T>(X(), count, _h, _w, spec, _outH, _outW, Y(), new Span<long>(_switches + (long)p0 * outPlane, count * outPlane));
                break;
            case PoolKernel.MaxBackward:
                Pooling.MaxBackward<T>(Dy(), new ReadOnlySpan<long>(_switches + (long)p0 * outPlane, count * outPlane), count, _h, _w, outPlane, Dx());
                break;
            case PoolKernel.AverageForward:
                Pooling.AverageForward<T>(X(), count, _h, _w, spec, _outH, _outW, Y());
                break;
            case PoolKernel.AverageBackward:
                Pooling.AverageBackward<T>(Dy(), count, _h, _w, spec, _outH, _outW, Dx());
                break;
            case PoolKernel.L2Forward:
                Pooling.L2Forward<T>(X(), count, _h, _w, spec, _outH, _outW, Y());
                break;
            default:
                Pooling.L2Backward<T>(Dy(), X(), new ReadOnlySpan<T>(_y + (long)p0 * outPlane, count * outPlane), count, _h, _w, spec, _outH, _outW, Dx());
                break;
        }
    }
}
