using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Lockstep.Backends.Managed.Tensors;
using Lockstep.Backends.Managed.Threading;
using static Lockstep.Backends.Managed.Kernels.VectorFma;

namespace Lockstep.Backends.Managed.Kernels;

// The input gradient of a stride-1 convolution with few filters (9–16), without columns: for each output row and
// vector of outputs along it, the K rows of dy in K registers, and for each tap t = (c, i, j) of the filters
// Σ_k w[k, t] · dy[k, oh, ow …] — the column of Wᵀ·dy that col2im would scatter — added at once into the padded dx
// row c, oh + i, from column ow + j on.
internal static partial class DirectConvolution
{
    /// <summary>Filters whose dy rows the data kernel keeps in registers.</summary>
    private const int DataFilters = 16;

    /// <summary>
    /// Whether dx goes by <see cref="BackwardDataByTaps{T}"/>: Vector512, stride 1, no dilation, ungrouped, 9–16
    /// filters. There im2col's route multiplies Wᵀ [C·F·F × K] by dy [K × H'·W'] only K deep, a product the BLAS
    /// packs more than it computes, then scatters the columns through col2im.
    /// </summary>
    public static bool AppliesToData(Shape x, int filters, ConvSpec spec) =>
        Vector512.IsHardwareAccelerated && spec.StrideH == 1 && spec.StrideW == 1 && spec.DilationH == 1 && spec.DilationW == 1
        && spec.Groups == 1 && filters > DataFilters / 2 && filters <= DataFilters && x.C * spec.KernelH * spec.KernelW <= MaxDataTaps;

    /// <summary>Taps C·F·F up to which <see cref="AppliesToData"/> holds (their offsets are kept per call).</summary>
    private const int MaxDataTaps = 1 << 14;

    /// <summary>
    /// Elements <see cref="BackwardDataByTaps{T}"/> rents: the filters transposed (C·F·F × 16), and per worker a copy of
    /// an image's dy rows (16 × H' × whole vectors) and its padded dx.
    /// </summary>
    public static long DataWorkspaceElements(Shape x, ConvSpec spec, int outH, int outW, int threads, int lanes)
    {
        var (rowLength, paddedH, paddedW) = DataGeometry(spec, outH, outW, lanes);
        return (long)x.C * spec.KernelH * spec.KernelW * DataFilters
            + (long)Math.Min(threads, x.N) * ((long)DataFilters * outH * rowLength + (long)x.C * paddedH * paddedW);
    }

    // dy rows are copied rowLength long (whole vectors, zero past W'); dx is accumulated padded, paddedH × paddedW.
    private static (int RowLength, int PaddedH, int PaddedW) DataGeometry(ConvSpec spec, int outH, int outW, int lanes)
    {
        int rowLength = (outW + lanes - 1) / lanes * lanes;
        return (rowLength, outH + spec.KernelH - 1, rowLength + spec.KernelW - 1);
    }

    // dx[n, c, r, s] = Σ_{k, i, j} w[k, c, i, j] · dy[n, k, r + P_top − i, s + P_left − j] (dy zero outside), as the
    // padded sum dxp[c, oh + i, ow + j] += Σ_k w[k, c, i, j] · dy[k, oh, ow] over the outputs (oh, ow), then cropped.
    // Each image on one worker; an element's terms are added in a fixed order (output rows, vectors along them, taps;
    // each term its K products summed in filter order), so the bits do not depend on the thread count.
    public static unsafe void BackwardDataByTaps<T>(WorkerPool workers, BufferPool pool, ReadOnlySpan<T> dy, Shape xShape,
        ReadOnlySpan<T> w, int filters, ConvSpec spec, int outH, int outW, Span<T> dx) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int lanes = Vector512<T>.Count, taps = xShape.C * spec.KernelH * spec.KernelW;
        var (rowLength, paddedH, paddedW) = DataGeometry(spec, outH, outW, lanes);
        int slots = Math.Min(workers.Threads, xShape.N);
        int perSlot = DataFilters * outH * rowLength + xShape.C * paddedH * paddedW;
        var transposed = pool.Rent<T>(taps * DataFilters, clear: true);
        var job = Cache<DataJob<T>>.Rent();
        var buffers = job.Slots(slots);
        try
        {
            // The taps in the order q = (j, c, i), so that two taps in a row update different rows of dxp (j after j
            // updated the same row one element on: its load waited for the store before it, which it overlaps):
            // transposed[q, k] = w[k, t(q)], zero for k ≥ K; tap t = (c, i, j) lands at dxp[c, oh + i, ow + j].
            var offsets = job.Taps(taps);
            int fh = spec.KernelH, fw = spec.KernelW, q = 0;
            for (int j = 0; j < fw; j++)
            for (int c = 0; c < xShape.C; c++)
            for (int i = 0; i < fh; i++, q++)
            {
                int t = (c * fh + i) * fw + j;
                for (int k = 0; k < filters; k++) transposed[q * DataFilters + k] = w[k * taps + t];
                offsets[q] = (c * paddedH + i) * paddedW + j;
            }
            for (int i = 0; i < slots; i++) buffers[i] = pool.Rent<T>(perSlot, clear: true);
            fixed (T* pdy = dy, pdx = dx)
            {
                job.Set(xShape, filters, spec, outH, outW, rowLength, paddedH, paddedW, transposed, pdy, pdx);
                workers.For(xShape.N, job);
            }
        }
        finally
        {
            job.ReturnSlots(pool);
            pool.Return(transposed);
            job.Clear();
            Cache<DataJob<T>>.Return(job);
        }
    }

    /// <summary>One image of <see cref="BackwardDataByTaps{T}"/> on the worker that takes it; dy and dx pinned by the caller.</summary>
    private sealed unsafe class DataJob<T> : DirectJob<T>, IParallelWork where T : unmanaged, IFloatingPointIeee754<T>
    {
        private Shape _x = Shape.Nchw(1, 1, 1, 1);
        private ConvSpec? _spec;
        private int _filters, _outH, _outW, _rowLength, _paddedH, _paddedW;
        private T[] _transposed = [];
        private T* _dy, _dx;

        public void Set(Shape x, int filters, ConvSpec spec, int outH, int outW, int rowLength, int paddedH, int paddedW, T[] transposed,
            T* dy, T* dx)
        {
            (_x, _filters, _spec, _outH, _outW, _rowLength, _paddedH, _paddedW, _transposed) =
                (x, filters, spec, outH, outW, rowLength, paddedH, paddedW, transposed);
            _dy = dy;
            _dx = dx;
        }

        public void Clear()
        {
            _transposed = [];
            _spec = null;
            _dy = _dx = null;
        }

        public void Run(int img, int worker)
        {
            var spec = _spec!;
            int lanes = Vector512<T>.Count, c = _x.C, hw = _outH * _outW;
            int rows = DataFilters * _outH * _rowLength, plane = _paddedH * _paddedW;
            var dyp = Slot(worker).AsSpan(0, rows);
            var dxp = Slot(worker).AsSpan(rows, c * plane);
            // dyp[k, oh, ow] = dy[img, k, oh, ow], zero past W' (and for k ≥ K, from the rent); dxp cleared.
            var dyn = new ReadOnlySpan<T>(_dy + (long)img * _filters * hw, _filters * hw);
            for (int k = 0; k < _filters; k++)
            for (int oh = 0; oh < _outH; oh++)
                dyn.Slice(k * hw + oh * _outW, _outW).CopyTo(dyp.Slice((k * _outH + oh) * _rowLength, _outW));
            dxp.Clear();
            ReadOnlySpan<T> wt = _transposed.AsSpan(0, Cff * DataFilters);
            var offsets = TapOffsets;
            for (int oh = 0; oh < _outH; oh++)
            for (int ow = 0; ow < _rowLength; ow += lanes)
                AddTaps(dyp[(oh * _rowLength + ow)..], _outH * _rowLength, wt, offsets, dxp[(oh * _paddedW + ow)..]);
            // dx[img, c, r, s] = dxp[c, r + P_top, s + P_left]
            var dxn = new Span<T>(_dx + (long)img * c * _x.H * _x.W, c * _x.H * _x.W);
            for (int ch = 0; ch < c; ch++)
            for (int r = 0; r < _x.H; r++)
                dxp.Slice(ch * plane + (r + spec.Padding.Top) * _paddedW + spec.Padding.Left, _x.W).CopyTo(dxn.Slice((ch * _x.H + r) * _x.W, _x.W));
        }
    }

    // dxp[offsets[t] + v] += Σ_k wt[t, k] · dy[k·kStride + v] for every tap t and the vector's lanes v: the 16 rows of dy
    // in registers, four taps at a time (four independent chains of 16 FMAs).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AddTaps<T>(ReadOnlySpan<T> dy, int kStride, ReadOnlySpan<T> wt, ReadOnlySpan<int> offsets, Span<T> dxp)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ref T d = ref MemoryMarshal.GetReference(dy);
        nuint s = (nuint)kStride;
        var d0 = Vector512.LoadUnsafe(ref d); var d1 = Vector512.LoadUnsafe(ref d, s); var d2 = Vector512.LoadUnsafe(ref d, 2 * s);
        var d3 = Vector512.LoadUnsafe(ref d, 3 * s); var d4 = Vector512.LoadUnsafe(ref d, 4 * s); var d5 = Vector512.LoadUnsafe(ref d, 5 * s);
        var d6 = Vector512.LoadUnsafe(ref d, 6 * s); var d7 = Vector512.LoadUnsafe(ref d, 7 * s); var d8 = Vector512.LoadUnsafe(ref d, 8 * s);
        var d9 = Vector512.LoadUnsafe(ref d, 9 * s); var d10 = Vector512.LoadUnsafe(ref d, 10 * s); var d11 = Vector512.LoadUnsafe(ref d, 11 * s);
        var d12 = Vector512.LoadUnsafe(ref d, 12 * s); var d13 = Vector512.LoadUnsafe(ref d, 13 * s); var d14 = Vector512.LoadUnsafe(ref d, 14 * s);
        var d15 = Vector512.LoadUnsafe(ref d, 15 * s);
        ref T w = ref MemoryMarshal.GetReference(wt);
        ref T x = ref MemoryMarshal.GetReference(dxp);
        ref int o = ref MemoryMarshal.GetReference(offsets);
        int taps = offsets.Length, t = 0;
        for (; t + 4 <= taps; t += 4)
        {
            ref T w0 = ref Unsafe.Add(ref w, t * DataFilters);
            var a0 = Sum(ref w0, d0, d1, d2, d3, d4, d5, d6, d7, d8, d9, d10, d11, d12, d13, d14, d15);
            var a1 = Sum(ref Unsafe.Add(ref w0, DataFilters), d0, d1, d2, d3, d4, d5, d6, d7, d8, d9, d10, d11, d12, d13, d14, d15);
            var a2 = Sum(ref Unsafe.Add(ref w0, 2 * DataFilters), d0, d1, d2, d3, d4, d5, d6, d7, d8, d9, d10, d11, d12, d13, d14, d15);
            var a3 = Sum(ref Unsafe.Add(ref w0, 3 * DataFilters), d0, d1, d2, d3, d4, d5, d6, d7, d8, d9, d10, d11, d12, d13, d14, d15);
            Add(ref x, Unsafe.Add(ref o, t), a0);
            Add(ref x, Unsafe.Add(ref o, t + 1), a1);
            Add(ref x, Unsafe.Add(ref o, t + 2), a2);
            Add(ref x, Unsafe.Add(ref o, t + 3), a3);
        }
        for (; t < taps; t++)
            Add(ref x, Unsafe.Add(ref o, t), Sum(ref Unsafe.Add(ref w, t * DataFilters), d0, d1, d2, d3, d4, d5, d6, d7, d8, d9, d10, d11, d12, d13, d14, d15));

        static void Add(ref T x, int at, Vector512<T> a) => (Vector512.LoadUnsafe(ref x, (nuint)at) + a).StoreUnsafe(ref x, (nuint)at);
    }

    // Σ_k w[k] · d_k, in filter order.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> Sum<T>(ref T w, Vector512<T> d0, Vector512<T> d1, Vector512<T> d2, Vector512<T> d3, Vector512<T> d4,
        Vector512<T> d5, Vector512<T> d6, Vector512<T> d7, Vector512<T> d8, Vector512<T> d9, Vector512<T> d10, Vector512<T> d11,
        Vector512<T> d12, Vector512<T> d13, Vector512<T> d14, Vector512<T> d15) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var a = Vector512.Create(w) * d0;
        a = Fma(Vector512.Create(Unsafe.Add(ref w, 1)), d1, a); a = Fma(Vector512.Create(Unsafe.Add(ref w, 2)), d2, a);
        a = Fma(Vector512.Create(Unsafe.Add(ref w, 3)), d3, a); a = Fma(Vector512.Create(Unsafe.Add(ref w, 4)), d4, a);
        a = Fma(Vector512.Create(Unsafe.Add(ref w, 5)), d5, a); a = Fma(Vector512.Create(Unsafe.Add(ref w, 6)), d6, a);
        a = Fma(Vector512.Create(Unsafe.Add(ref w, 7)), d7, a); a = Fma(Vector512.Create(Unsafe.Add(ref w, 8)), d8, a);
        a = Fma(Vector512.Create(Unsafe.Add(ref w, 9)), d9, a); a = Fma(Vector512.Create(Unsafe.Add(ref w, 10)), d10, a);
        a = Fma(Vector512.Create(Unsafe.Add(ref w, 11)), d11, a); a = Fma(Vector512.Create(Unsafe.Add(ref w, 12)), d12, a);
        a = Fma(Vector512.Create(Unsafe.Add(ref w, 13)), d13, a); a = Fma(Vector512.Create(Unsafe.Add(ref w, 14)), d14, a);
        return Fma(Vector512.Create(Unsafe.Add(ref w, 15)), d15, a);
    }
}
