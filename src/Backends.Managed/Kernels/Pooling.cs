using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
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
        var (vLo, vHi) = VectorColumns<T>(spec, w, outW, partial: true);
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
    // partial: rows of a quarter of a vector's outputs or more qualify too (MaxRow fills a vector partly).
    private static (int Lo, int Hi) VectorColumns<T>(PoolSpec spec, int w, int outW, bool partial = false) where T : unmanaged
    {
        int lanes = Lanes<T>();
        if (lanes == 0 || spec.StrideW > 2) return (0, 0);
        int lo = spec.PadW <= 0 ? 0 : (spec.PadW + spec.StrideW - 1) / spec.StrideW;
        int last = w - 1 + spec.PadW - (spec.KernelW - 1) * spec.DilationW;   // ow·S ≤ last
        int hi = last < 0 ? 0 : Math.Min(outW, last / spec.StrideW + 1);
        return hi - lo >= (partial ? lanes / 4 : lanes) ? (lo, hi) : (0, 0);
    }

    private static int Lanes<T>() where T : unmanaged =>
        Vector512.IsHardwareAccelerated ? Vector512<T>.Count : Vector256.IsHardwareAccelerated ? Vector256<T>.Count : 0;

    // Outputs [lo, hi) of one row, a vector of them at a time (the last vector overlaps the one before, rewriting
    // identical values); a row narrower than a vector (VGG16's pool5, 7 outputs) fills one partly, its other lanes
    // reading on into the plane's next row and thrown away. Tap t = r·F_w + q is carried in the lanes as a number of
    // type T (exact: t < 256).
    private static void MaxRow<T>(ReadOnlySpan<T> xp, int w, PoolSpec spec, int r0, int rows, int lo, int hi,
        Span<T> yRow, Span<long> switches, Span<int> offsets) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int cols = spec.KernelW, s = spec.StrideW, dw = spec.DilationW, dh = spec.DilationH;
        for (int r = 0; r < rows; r++)
        {
            for (int q = 0; q < cols; q++) offsets[r * cols + q] = r * dh * w + q * dw;
        }
        int lanes = Lanes<T>();
        Span<T> taps = stackalloc T[64];
        Span<T> narrow = stackalloc T[64];
        // A narrow row's vector goes to `narrow` at lane 0 and its first hi − lo lanes are copied out.
        bool partial = hi - lo < lanes;
        var y = partial ? narrow : yRow;
        int shift = partial ? lo : 0;
        ref T px = ref MemoryMarshal.GetReference(xp);
        for (int ow = lo; ; ow += lanes)
        {
            if (!partial && ow > hi - lanes) ow = hi - lanes;
            int origin = r0 * w + ow * s - spec.PadW;   // tap 0 of output ow
            // A stride-2 vector reads 2·lanes elements from each tap; the odd ones past the row may lie past the plane.
            int reach = origin + offsets[rows * cols - 1] + (s == 2 ? 2 * lanes : lanes);
            if ((s == 2 || partial) && reach > xp.Length)
            {
                for (int k = ow; k < hi; k++) MaxWindowInside(xp, w, spec, r0, rows, k, out yRow[k], out switches[k]);
                return;
            }
            ref T yAt = ref Unsafe.Add(ref MemoryMarshal.GetReference(y), ow - shift);
            if (Vector512.IsHardwareAccelerated) MaxTaps<Lanes512<T>, T>(ref Unsafe.Add(ref px, origin), offsets[..(rows * cols)], s, ref yAt, taps);
            else MaxTaps<Lanes256<T>, T>(ref Unsafe.Add(ref px, origin), offsets[..(rows * cols)], s, ref yAt, taps);
            int count = Math.Min(lanes, hi - ow);
            for (int k = 0; k < count; k++) switches[ow + k] = origin + k * s + offsets[int.CreateTruncating(taps[k])];
            if (partial) narrow[..count].CopyTo(yRow[ow..]);
            if (ow + lanes >= hi) return;
        }
    }

    // A vector of outputs: the maximum over the taps (NaN wins, the first maximum kept) at y, and the tap it came from,
    // as a number of type T, at taps[0..lanes).
    private static void MaxTaps<TLanes, T>(ref T origin, ReadOnlySpan<int> offsets, int stride, ref T y, Span<T> taps)
        where TLanes : struct, IVectorLanes<TLanes, T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        var max = TLanes.Create(T.NegativeInfinity);
        var arg = TLanes.Create(T.Zero);
        for (int t = 0; t < offsets.Length; t++)
        {
            ref T at = ref Unsafe.Add(ref origin, offsets[t]);
            var v = stride == 1 ? TLanes.Load(ref at, 0) : TLanes.LoadEven(ref at);
            var take = TLanes.GreaterOrNaN(v, max);
            max = TLanes.Select(take, v, max);
            arg = TLanes.Select(take, TLanes.Create(T.CreateTruncating(t)), arg);
        }
        TLanes.Store(max, ref y, 0);
        TLanes.Store(arg, ref MemoryMarshal.GetReference(taps), 0);
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

    // A vector of outputs at y: the sum over the taps, from +0 in tap order, of x (average: then ÷ divisor) or of x²
    // (L2: then its square root).
    private static void SumTaps<TLanes, T>(ref T origin, ReadOnlySpan<int> offsets, int stride, bool squares, T divisor, ref T y)
        where TLanes : struct, IVectorLanes<TLanes, T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        var sum = TLanes.Create(T.Zero);
        for (int t = 0; t < offsets.Length; t++)
        {
            ref T at = ref Unsafe.Add(ref origin, offsets[t]);
            var v = stride == 1 ? TLanes.Load(ref at, 0) : TLanes.LoadEven(ref at);
            sum = TLanes.Add(sum, squares ? TLanes.Multiply(v, v) : v);
        }
        TLanes.Store(squares ? TLanes.Sqrt(sum) : TLanes.Divide(sum, TLanes.Create(divisor)), ref y, 0);
    }

    // dx[switch] += dy, into a plane of zeros, in output order. Windows that tile the plane (2×2, stride 2) write each
    // element of dx once instead — dy where the window's switch is, +0 elsewhere (the scatter's bits: +0 + dy) — a vector
    // of 8 windows at a time; should a switch lie outside its own window, the plane is redone by the scatter.
    public static void MaxBackward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<long> switches, int planes, int h, int w, PoolSpec spec,
        int outH, int outW, Span<T> dx) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int plane = h * w, outPlane = outH * outW;
        // Only where a row has 8 windows inside for the vector: on narrower planes (VGG16's pool5, 14 → 7) the scalar
        // per-window writes measured 10× slower than the scatter.
        bool tiles = spec.KernelH == 2 && spec.KernelW == 2 && spec.StrideH == 2 && spec.StrideW == 2
            && spec.DilationH == 1 && spec.DilationW == 1 && Vector512.IsHardwareAccelerated
            && (typeof(T) == typeof(float) || typeof(T) == typeof(double))
            && Math.Min(outW, (w + spec.PadW - 2) / 2 + 1) - (spec.PadW + 1) / 2 >= 8;
        for (int p = 0; p < planes; p++)
        {
            var dyp = dy.Slice(p * outPlane, outPlane);
            var sp = switches.Slice(p * outPlane, outPlane);
            var dxp = dx.Slice(p * plane, plane);
            if (tiles && Tiles(dyp, sp, h, w, spec, outH, outW, dxp)) continue;
            // Cleared plane by plane, so the scatter finds the plane still in cache.
            dxp.Clear();
            int o = ScatterChecked(dyp, sp, dxp);
            for (; o < outPlane; o++)
            {
                long s = sp[o];
                if ((ulong)s >= (ulong)plane)
                {
                    throw new ArgumentException($"POOL backward: switch {p * outPlane + o} is {s}, outside its {h}×{w} input plane; switches must come from the forward pass");
                }
                dxp[(int)s] += dyp[o];
            }
        }
    }

    // dx[s[o]] += dy[o] in output order for the leading outputs whose 8 switches a vector finds inside the plane: the
    // scatter without a bounds check per element (the first vector with a switch outside stops it; the caller's
    // checked loop then goes on from there and reports it). Returns the outputs done. Interleaved call by call (2
    // threads, float32, batch 8): AlexNet's pool1 backward 0.33 against 0.49 ms, pool2 0.20 against 0.27.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int ScatterChecked<T>(ReadOnlySpan<T> dy, ReadOnlySpan<long> switches, Span<T> dx) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (!Vector512.IsHardwareAccelerated) return 0;
        int n = switches.Length, o = 0;
        var limit = Vector512.Create((ulong)dx.Length);
        ref long sr = ref MemoryMarshal.GetReference(switches);
        ref T g = ref MemoryMarshal.GetReference(dy);
        ref T d = ref MemoryMarshal.GetReference(dx);
        for (; o <= n - 8; o += 8)
        {
            if (Vector512.GreaterThanOrEqualAny(Vector512.LoadUnsafe(ref sr, (nuint)o).AsUInt64(), limit)) break;
            for (int k = 0; k < 8; k++) Unsafe.Add(ref d, (nint)Unsafe.Add(ref sr, o + k)) += Unsafe.Add(ref g, o + k);
        }
        return o;
    }

    /// <summary>
    /// One plane of 2×2/2 max-pool dx, written once row pair by row pair; false (dx partly written) when a switch is
    /// not in its own window.
    /// </summary>
    private static bool Tiles<T>(ReadOnlySpan<T> dyp, ReadOnlySpan<long> sp, int h, int w, PoolSpec spec, int outH, int outW, Span<T> dxp)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int padH = spec.PadH, padW = spec.PadW;
        // Windows whose two columns lie inside, [vLo, vHi), and whose two rows do, [hLo, hHi): 8 at a time (16 columns).
        int vLo = (padW + 1) / 2, vHi = Math.Min(outW, (w + padW - 2) / 2 + 1);
        int hLo = (padH + 1) / 2, hHi = Math.Min(outH, (h + padH - 2) / 2 + 1);
        bool vector = Vector512.IsHardwareAccelerated && (typeof(T) == typeof(float) || typeof(T) == typeof(double)) && vHi - vLo >= 8;
        if (vector && hHi > hLo && !TileRows(dyp, sp, w, padH, padW, outW, hLo, hHi, vLo, vHi, dxp)) return false;
        // Rows and columns past the last window belong to none.
        int rowsEnd = Math.Min(h, 2 * outH - padH), colsEnd = Math.Min(w, 2 * outW - padW);
        if (rowsEnd < h) dxp[(rowsEnd * w)..].Clear();
        bool edges = !vector || vLo > 0 || vHi < outW || colsEnd < w;
        for (int oh = 0; oh < outH; oh++)
        {
            bool inVector = vector && oh >= hLo && oh < hHi;
            if (inVector && !edges) continue;
            int ra = 2 * oh - padH;
            for (int r = Math.Max(ra, 0); r < Math.Min(ra + 2, h); r++)
            {
                if (colsEnd < w) dxp.Slice(r * w + colsEnd, w - colsEnd).Clear();
            }
            var sRow = sp.Slice(oh * outW, outW);
            var gRow = dyp.Slice(oh * outW, outW);
            for (int ow = 0; ow < outW; ow++)
            {
                if (inVector && ow == vLo) ow = vHi;
                if (ow >= outW) break;
                long s = sRow[ow];
                int ca = 2 * ow - padW;
                bool inside = false;
                for (int r = Math.Max(ra, 0); r < Math.Min(ra + 2, h); r++)
                {
                    for (int c = Math.Max(ca, 0); c < Math.Min(ca + 2, w); c++)
                    {
                        bool hit = s == (long)r * w + c;
                        inside |= hit;
                        dxp[r * w + c] = hit ? T.Zero + gRow[ow] : T.Zero;
                    }
                }
                if (!inside) return false;
            }
        }
        return true;
    }

    // Windows [lo, hi) of output rows [ohLo, ohHi) (all inside), 8 at a time (the last 8 of a row overlap the ones
    // before, rewriting the same values): switch − window origin = 0, 1, W or W + 1 picks the element that gets dy.
    private static bool TileRows<T>(ReadOnlySpan<T> dyp, ReadOnlySpan<long> sp, int w, int padH, int padW, int outW,
        int ohLo, int ohHi, int lo, int hi, Span<T> dxp) where T : unmanaged, IFloatingPointIeee754<T>
    {
        ref long rs = ref MemoryMarshal.GetReference(sp);
        ref T rg = ref MemoryMarshal.GetReference(dyp);
        ref T rx = ref MemoryMarshal.GetReference(dxp);
        var twice = Vector512.Create(0L, 2, 4, 6, 8, 10, 12, 14);
        var wide = Vector512.Create((long)w);
        var two = Vector512.Create(2UL);
        var pairs = Vector512.Create(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
        var top = Vector512.Create(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1);
        var bottom = top + Vector512.Create(w);
        for (int oh = ohLo; oh < ohHi; oh++)
        {
            int ra = 2 * oh - padH, o0 = oh * outW;
            for (int ow = lo; ; ow += 8)
            {
                if (ow > hi - 8) ow = hi - 8;
                int ca = 2 * ow - padW;
                var rel = Vector512.LoadUnsafe(ref rs, (nuint)(o0 + ow)) - (Vector512.Create((long)ra * w + ca) + twice);
                // In the window: rel or rel − W in [0, 2); then rel fits an int.
                var inside = Vector512.LessThan(rel.AsUInt64(), two) | Vector512.LessThan((rel - wide).AsUInt64(), two);
                if (inside != Vector512<ulong>.AllBitsSet) return false;
                // Window j's offset in lanes 2j, 2j + 1 (the shuffle reads the lower half only: no merge into the upper).
                var narrow = Avx512F.IsSupported ? Avx512F.ConvertToVector256Int32(rel).ToVector512Unsafe() : Vector512.Narrow(rel, rel);
                var rel2 = Vector512.Shuffle(narrow, pairs);
                var hitA = Vector512.Equals(rel2, top);
                var hitB = Vector512.Equals(rel2, bottom);
                nuint a = (nuint)(ra * w + ca), b = a + (nuint)w;
                if (typeof(T) == typeof(float))
                {
                    var g8 = Vector256.LoadUnsafe(ref Unsafe.As<T, float>(ref rg), (nuint)(o0 + ow));
                    var g = Vector512.Shuffle(g8.ToVector512Unsafe(), pairs);
                    ref float dx = ref Unsafe.As<T, float>(ref rx);
                    ((hitA.AsSingle() & g) + Vector512<float>.Zero).StoreUnsafe(ref dx, a);
                    ((hitB.AsSingle() & g) + Vector512<float>.Zero).StoreUnsafe(ref dx, b);
                }
                else
                {
                    var g8 = Vector512.LoadUnsafe(ref Unsafe.As<T, double>(ref rg), (nuint)(o0 + ow));
                    var gLo = Vector512.Shuffle(g8, Vector512.Create(0L, 0, 1, 1, 2, 2, 3, 3));
                    var gHi = Vector512.Shuffle(g8, Vector512.Create(4L, 4, 5, 5, 6, 6, 7, 7));
                    ref double dx = ref Unsafe.As<T, double>(ref rx);
                    ((Vector512.WidenLower(hitA).AsDouble() & gLo) + Vector512<double>.Zero).StoreUnsafe(ref dx, a);
                    ((Vector512.WidenUpper(hitA).AsDouble() & gHi) + Vector512<double>.Zero).StoreUnsafe(ref dx, a + 8);
                    ((Vector512.WidenLower(hitB).AsDouble() & gLo) + Vector512<double>.Zero).StoreUnsafe(ref dx, b);
                    ((Vector512.WidenUpper(hitB).AsDouble() & gHi) + Vector512<double>.Zero).StoreUnsafe(ref dx, b + 8);
                }
                if (ow + 8 >= hi) break;
            }
        }
        return true;
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
        where T : unmanaged, IFloatingPointIeee754<T> => SumForward(x, planes, h, w, spec, outH, outW, y, squares: false);

    // y = sqrt(Σ_window x²)
    public static void L2Forward<T>(ReadOnlySpan<T> x, int planes, int h, int w, PoolSpec spec, int outH, int outW, Span<T> y)
        where T : unmanaged, IFloatingPointIeee754<T> => SumForward(x, planes, h, w, spec, outH, outW, y, squares: true);

    // The window's taps summed (squared for L2) in row-major order from +0, then divided (average) or square-rooted (L2):
    // scalar at a row's edges, a vector of outputs at once where the window's columns lie inside and the stride is 1
    // or 2 — the same additions in the same order per lane, so the bits do not depend on which outputs a vector took.
    private static void SumForward<T>(ReadOnlySpan<T> x, int planes, int h, int w, PoolSpec spec, int outH, int outW, Span<T> y,
        bool squares) where T : unmanaged, IFloatingPointIeee754<T>
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
                int hi = vLo;
                if (vHi > vLo)
                {
                    var (r0, rows) = Taps(oh * spec.StrideH - spec.PadH, spec.KernelH, spec.DilationH, h);
                    if (rows > 0 && rows * spec.KernelW <= offsets.Length)
                    {
                        // Every window of [vLo, vHi) has the same taps inside, so the same divisor.
                        T divisor = squares ? T.One : T.CreateTruncating(Divisor(spec, oh, vLo, h, w, Clip(spec, oh, vLo, h, w)));
                        SumRow(xp, h, w, spec, oh, r0, rows, vLo, vHi, yRow, offsets, squares, divisor);
                        hi = vHi;
                    }
                }
                for (int ow = 0; ow < outW; ow++)
                {
                    if (ow == vLo) ow = Math.Max(ow, hi);
                    if (ow >= outW) break;
                    yRow[ow] = SumWindow(xp, h, w, spec, oh, ow, squares);
                }
            }
        }
    }

    private static T SumWindow<T>(ReadOnlySpan<T> xp, int h, int w, PoolSpec spec, int oh, int ow, bool squares)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var win = Clip(spec, oh, ow, h, w);
        if (win.IsEmpty) return T.Zero;
        T sum = T.Zero;
        for (int r = 0, ih = win.R0; r < win.Rows; r++, ih += win.Dh)
        {
            for (int q = 0, iw = win.C0; q < win.Cols; q++, iw += win.Dw)
            {
                T v = xp[ih * w + iw];
                sum += squares ? v * v : v;
            }
        }
        return squares ? T.Sqrt(sum) : sum / T.CreateTruncating(Divisor(spec, oh, ow, h, w, win));
    }

    // Outputs [lo, hi) of one row, a vector at a time (the last vector overlaps the one before, rewriting the same values).
    private static void SumRow<T>(ReadOnlySpan<T> xp, int h, int w, PoolSpec spec, int oh, int r0, int rows, int lo, int hi, Span<T> y,
        Span<int> offsets, bool squares, T divisor) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int cols = spec.KernelW, s = spec.StrideW, taps = rows * cols;
        for (int r = 0; r < rows; r++)
        {
            for (int q = 0; q < cols; q++) offsets[r * cols + q] = r * spec.DilationH * w + q * spec.DilationW;
        }
        int lanes = Lanes<T>();
        ref T px = ref MemoryMarshal.GetReference(xp);
        ref T py = ref MemoryMarshal.GetReference(y);
        for (int ow = lo; ; ow += lanes)
        {
            if (ow > hi - lanes) ow = hi - lanes;
            int origin = r0 * w + ow * s - spec.PadW;
            // A stride-2 vector reads 2·lanes elements from each tap; the odd ones past the row may lie past the plane.
            if (s == 2 && origin + offsets[taps - 1] + 2 * lanes > xp.Length)
            {
                for (int k = ow; k < hi; k++) y[k] = SumWindow(xp, h, w, spec, oh, k, squares);
                return;
            }
            if (Vector512.IsHardwareAccelerated) SumTaps<Lanes512<T>, T>(ref Unsafe.Add(ref px, origin), offsets[..taps], s, squares, divisor, ref Unsafe.Add(ref py, ow));
            else SumTaps<Lanes256<T>, T>(ref Unsafe.Add(ref px, origin), offsets[..taps], s, squares, divisor, ref Unsafe.Add(ref py, ow));
            if (ow + lanes >= hi) return;
        }
    }

    // dx[window] += dy / divisor
    public static void AverageBackward<T>(ReadOnlySpan<T> dy, int planes, int h, int w, PoolSpec spec, int outH, int outW, Span<T> dx)
        where T : unmanaged, IFloatingPointIeee754<T> => SumBackward(dy, default, default, planes, h, w, spec, outH, outW, dx, squares: false);

    // dx[window] += dy·x / y, nothing where y = 0
    public static void L2Backward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, ReadOnlySpan<T> y, int planes, int h, int w,
        PoolSpec spec, int outH, int outW, Span<T> dx) where T : unmanaged, IFloatingPointIeee754<T> =>
        SumBackward(dy, x, y, planes, h, w, spec, outH, outW, dx, squares: true);

    // Each window's share — dy / divisor (average), dy·x / y (L2, none where y = 0) — added to its taps in output order
    // from +0: a scatter into a cleared plane, or, at stride 2 (D = 1), a gather per input element over the windows that
    // cover it in the same order (the same bits), each element of dx written once, a vector of columns at a time.
    private static void SumBackward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, ReadOnlySpan<T> y, int planes, int h, int w,
        PoolSpec spec, int outH, int outW, Span<T> dx, bool squares) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int plane = h * w, outPlane = outH * outW;
        bool gather = spec.StrideW == 2 && spec.DilationH == 1 && spec.DilationW == 1;
        var (cLo, cHi) = gather ? SumGatherColumns<T>(spec, w, outW) : (0, 0);
        for (int p = 0; p < planes; p++)
        {
            var dyp = dy.Slice(p * outPlane, outPlane);
            var xp = squares ? x.Slice(p * plane, plane) : default;
            var yp = squares ? y.Slice(p * outPlane, outPlane) : default;
            var dxp = dx.Slice(p * plane, plane);
            if (!gather)
            {
                SumScatter(dyp, xp, yp, h, w, spec, outH, outW, dxp, squares);
                continue;
            }
            for (int ih = 0; ih < h; ih++)
            {
                var row = dxp.Slice(ih * w, w);
                var (ohLo, ohHi) = Covering(ih, spec.StrideH, spec.PadH, spec.KernelH - 1, outH);
                if (ohLo > ohHi)
                {
                    row.Clear();
                    continue;
                }
                int iw = 0;
                if (cHi > cLo)
                {
                    for (; iw < cLo; iw++) row[iw] = SumGatherOne(dyp, xp, yp, ih, iw, h, w, spec, ohLo, ohHi, outW, squares);
                    SumGatherRow(dyp, xp, yp, ih, h, w, spec, ohLo, ohHi, outW, cLo, cHi, row, squares);
                    iw = cHi;
                }
                for (; iw < w; iw++) row[iw] = SumGatherOne(dyp, xp, yp, ih, iw, h, w, spec, ohLo, ohHi, outW, squares);
            }
        }
    }

    private static void SumScatter<T>(ReadOnlySpan<T> dyp, ReadOnlySpan<T> xp, ReadOnlySpan<T> yp, int h, int w, PoolSpec spec,
        int outH, int outW, Span<T> dxp, bool squares) where T : unmanaged, IFloatingPointIeee754<T>
    {
        dxp.Clear();
        for (int oh = 0, o = 0; oh < outH; oh++)
        {
            for (int ow = 0; ow < outW; ow++, o++)
            {
                var win = Clip(spec, oh, ow, h, w);
                if (win.IsEmpty || (squares && yp[o] == T.Zero)) continue;
                T share = squares ? dyp[o] : dyp[o] / T.CreateTruncating(Divisor(spec, oh, ow, h, w, win));
                for (int r = 0, ih = win.R0; r < win.Rows; r++, ih += win.Dh)
                {
                    for (int q = 0, iw = win.C0; q < win.Cols; q++, iw += win.Dw)
                    {
                        int i = ih * w + iw;
                        dxp[i] += squares ? share * xp[i] / yp[o] : share;
                    }
                }
            }
        }
    }

    /// <summary>The outputs [lo, hi] along one axis whose windows (taps start·S − P … + extent, D = 1) cover input index i.</summary>
    private static (int Lo, int Hi) Covering(int i, int s, int pad, int extent, int outSize)
    {
        int hi = Math.Min(outSize - 1, (i + pad) / s), a = i + pad - extent;
        return (a <= 0 ? 0 : (a + s - 1) / s, hi);
    }

    private static T SumGatherOne<T>(ReadOnlySpan<T> dyp, ReadOnlySpan<T> xp, ReadOnlySpan<T> yp, int ih, int iw, int h, int w,
        PoolSpec spec, int ohLo, int ohHi, int outW, bool squares) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (owLo, owHi) = Covering(iw, spec.StrideW, spec.PadW, spec.KernelW - 1, outW);
        T sum = T.Zero;
        for (int oh = ohLo; oh <= ohHi; oh++)
        {
            for (int ow = owLo; ow <= owHi; ow++)
            {
                int o = oh * outW + ow;
                if (squares)
                {
                    if (yp[o] != T.Zero) sum += dyp[o] * xp[ih * w + iw] / yp[o];
                }
                else
                {
                    sum += dyp[o] / T.CreateTruncating(Divisor(spec, oh, ow, h, w, Clip(spec, oh, ow, h, w)));
                }
            }
        }
        return sum;
    }

    /// <summary>
    /// The input columns [lo, hi) that <see cref="SumGatherRow"/> covers: 16 a vector, c + P_w even, every window that
    /// covers them one of a full vector of 8 outputs whose columns lie inside the input (the same divisor); else (0, 0).
    /// </summary>
    private static (int Lo, int Hi) SumGatherColumns<T>(PoolSpec spec, int w, int outW) where T : unmanaged
    {
        if (!Vector512.IsHardwareAccelerated || (typeof(T) != typeof(float) && typeof(T) != typeof(double))) return (0, 0);
        if (w + spec.PadW < 16 || w + spec.PadW < spec.KernelW) return (0, 0);
        int back = (spec.KernelW - 1) / 2;
        int inLo = (spec.PadW + 1) / 2, inHi = Math.Min(outW, (w - spec.KernelW + spec.PadW) / 2 + 1);   // windows inside: [inLo, inHi)
        int qLo = Math.Max(inLo + back, (spec.PadW + 1) / 2), qHi = Math.Min(inHi - 8, (w + spec.PadW - 16) / 2);
        return qHi >= qLo ? (2 * qLo - spec.PadW, 2 * qHi - spec.PadW + 16) : (0, 0);
    }

    // Columns [lo, hi) of input row ih, 16 at a time (the last vector overlaps the one before): lane pair j of a vector
    // at c lies in windows q + j − k, q = (c + P)/2, k = back … 0 (an odd lane not in the window 2k = F − 1 back); each
    // window's share is computed once for 8 outputs, spread over the lane pairs, and added in output order.
    private static void SumGatherRow<T>(ReadOnlySpan<T> dyp, ReadOnlySpan<T> xp, ReadOnlySpan<T> yp, int ih, int h, int w,
        PoolSpec spec, int ohLo, int ohHi, int outW, int lo, int hi, Span<T> row, bool squares) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int back = (spec.KernelW - 1) / 2;
        bool edge = (spec.KernelW - 1) % 2 == 0;   // the window k = back covers the even lanes only
        ref T rdy = ref MemoryMarshal.GetReference(dyp);
        ref T ry = ref MemoryMarshal.GetReference(yp);
        ref T rx = ref MemoryMarshal.GetReference(xp);
        ref T rrow = ref MemoryMarshal.GetReference(row);
        var pairsLo = Vector512.Create(0L, 0, 1, 1, 2, 2, 3, 3);
        var pairsHi = Vector512.Create(4L, 4, 5, 5, 6, 6, 7, 7);
        var evenLo = Vector512.Create(-1L, 0, -1, 0, -1, 0, -1, 0);
        // Every window these columns lie in has its columns inside the input: the divisor depends on the row alone.
        int inside = (lo + spec.PadW) / 2;
        for (int c = lo; ; c += 16)
        {
            if (c > hi - 16) c = hi - 16;
            int q = (c + spec.PadW) / 2;
            if (typeof(T) == typeof(float))
            {
                var acc = Vector512<float>.Zero;
                var pairs = Vector512.Create(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
                var even = Vector512.Create(-1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0).AsSingle();
                var xv = squares ? Vector512.LoadUnsafe(ref Unsafe.As<T, float>(ref rx), (nuint)(ih * w + c)) : default;
                for (int oh = ohLo; oh <= ohHi; oh++)
                {
                    var divisor = Vector256.Create(squares ? 1f : float.CreateTruncating(Divisor(spec, oh, inside, h, w, Clip(spec, oh, inside, h, w))));
                    for (int k = back; k >= 0; k--)
                    {
                        int o = oh * outW + q - k;
                        var g = Vector256.LoadUnsafe(ref Unsafe.As<T, float>(ref rdy), (nuint)o);
                        Vector512<float> add;
                        if (squares)
                        {
                            var yv = Vector256.LoadUnsafe(ref Unsafe.As<T, float>(ref ry), (nuint)o);
                            var yd = Vector512.Shuffle(Vector512.Create(yv, yv), pairs);
                            add = ~Vector512.Equals(yd, Vector512<float>.Zero) & (Vector512.Shuffle(Vector512.Create(g, g), pairs) * xv / yd);
                        }
                        else
                        {
                            var share = g / divisor;
                            add = Vector512.Shuffle(Vector512.Create(share, share), pairs);
                        }
                        acc += edge && k == back ? add & even : add;
                    }
                }
                acc.StoreUnsafe(ref Unsafe.As<T, float>(ref rrow), (nuint)c);
            }
            else
            {
                var accLo = Vector512<double>.Zero;
                var accHi = Vector512<double>.Zero;
                var even = evenLo.AsDouble();
                var xLo = squares ? Vector512.LoadUnsafe(ref Unsafe.As<T, double>(ref rx), (nuint)(ih * w + c)) : default;
                var xHi = squares ? Vector512.LoadUnsafe(ref Unsafe.As<T, double>(ref rx), (nuint)(ih * w + c + 8)) : default;
                for (int oh = ohLo; oh <= ohHi; oh++)
                {
                    var divisor = Vector512.Create(squares ? 1d : double.CreateTruncating(Divisor(spec, oh, inside, h, w, Clip(spec, oh, inside, h, w))));
                    for (int k = back; k >= 0; k--)
                    {
                        int o = oh * outW + q - k;
                        var g = Vector512.LoadUnsafe(ref Unsafe.As<T, double>(ref rdy), (nuint)o);
                        Vector512<double> addLo, addHi;
                        if (squares)
                        {
                            var yv = Vector512.LoadUnsafe(ref Unsafe.As<T, double>(ref ry), (nuint)o);
                            var yLo = Vector512.Shuffle(yv, pairsLo);
                            var yHi = Vector512.Shuffle(yv, pairsHi);
                            addLo = ~Vector512.Equals(yLo, Vector512<double>.Zero) & (Vector512.Shuffle(g, pairsLo) * xLo / yLo);
                            addHi = ~Vector512.Equals(yHi, Vector512<double>.Zero) & (Vector512.Shuffle(g, pairsHi) * xHi / yHi);
                        }
                        else
                        {
                            var share = g / divisor;
                            addLo = Vector512.Shuffle(share, pairsLo);
                            addHi = Vector512.Shuffle(share, pairsHi);
                        }
                        if (edge && k == back)
                        {
                            addLo &= even;
                            addHi &= even;
                        }
                        accLo += addLo;
                        accHi += addHi;
                    }
                }
                accLo.StoreUnsafe(ref Unsafe.As<T, double>(ref rrow), (nuint)c);
                accHi.StoreUnsafe(ref Unsafe.As<T, double>(ref rrow), (nuint)(c + 8));
            }
            if (c + 16 >= hi) return;
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
                Pooling.MaxBackward<T>(Dy(), new ReadOnlySpan<long>(_switches + (long)p0 * outPlane, count * outPlane), count, _h, _w, spec, _outH, _outW, Dx());
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
