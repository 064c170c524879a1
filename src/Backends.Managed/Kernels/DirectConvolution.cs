using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Lockstep.Backends.Managed.Tensors;
using Lockstep.Backends.Managed.Threading;
using static Lockstep.Backends.Managed.Kernels.VectorFma;

namespace Lockstep.Backends.Managed.Kernels;

// N batch, C input channels, H×W input, K filters, F_h×F_w kernel, S stride, P padding (top/left), D dilation, H'×W' output;
// CFF = C·F_h·F_w taps per output, t = (c·F_h + i)·F_w + j one tap; V lanes per vector, W'' = W' rounded up to V.
// The padded image: xp[c, r, φ, m] = x[c, r − P_h, m·S_w + φ − P_w] (0 outside the input) for the padded rows r of a
// band of output rows and the S_w column phases φ, so that tap (i, j) of outputs ow … ow + V − 1 is one contiguous load
// xp[c, oh·S_h + i·D_h, (j·D_w) mod S_w, ow + ⌊j·D_w / S_w⌋ …] whatever the stride.

/// <summary>
/// CONV computed directly (no im2col matrix): vectors of V outputs along a row, 8 filters × 2 such vectors (of the
/// same row or of the next, so that a narrow row wastes at most one vector's tail) per pass over the taps. For the small first layers (few taps C·F·F, few filters) where im2col's expansion
/// and the BLAS's packing cost more than the products themselves.
/// </summary>
internal static partial class DirectConvolution
{
    /// <summary>Filters computed together: each input load feeds this many accumulators per vector of outputs.</summary>
    public const int FilterBlock = 8;

    /// <summary>Elements of a padded band (per worker); bands are cut to fit, at least one output row each.</summary>
    private const int BandElements = 1 << 15;

    /// <summary>
    /// Geometries the direct kernel takes (measured on the project's 2-core AVX-512 machine, README "Performance"):
    /// ungrouped, not pointwise, at most 512 taps per output, at most 128 filters, and rows of at least ¾ of a vector
    /// of outputs (W' ≥ 12 in float32 on Vector512; narrower rows waste most lanes and im2col + GEMM wins), or of ⅝ with
    /// at most 16 filters, where im2col's products are too small to pay (LeNet's conv2, W' = 10, 16 filters: 0.35
    /// against 0.41 ms at batch 64, 2 threads, float32; 32 channels at W' = 10 and W' = 8 level) — cifar's 5×5×3 (75
    /// taps, 16 filters), AlexNet's conv1 (363, 96), VGG16's conv1_1 (27, 64), LeNet's conv1 and conv2 (whose dw then
    /// goes by filters: 0.23 against im2col's 0.95 ms). Dilation, padding on any side, any stride and either size rule
    /// are all handled; groups go to im2col. The 4 × 4 weight gradient keeps the ¾ rule (<see cref="AppliesToWeights"/>).
    /// </summary>
    public static bool Applies(Shape x, int filters, ConvSpec spec, int outW, int lanes) =>
        AppliesAtAnyWidth(x, filters, spec) && (Wide(outW, lanes) || filters <= 16 && 8 * outW >= 5 * lanes);

    // Rows of at least ¾ of a vector of outputs.
    private static bool Wide(int outW, int lanes) => 4 * outW >= 3 * lanes;

    // Applies but for the width of the rows.
    private static bool AppliesAtAnyWidth(Shape x, int filters, ConvSpec spec) =>
        spec.Groups == 1 && !Convolution.IsPointwise(spec) && x.C * spec.KernelH * spec.KernelW <= 512 && filters <= 128;


    /// <summary>
    /// Whether dw and db are computed directly too: where the forward is, and either the image's padded copy is one
    /// band (cifar's and LeNet's conv1: 6× faster than im2col + GEMM at one thread) or the taps are few,
    /// C·F·F ≤ <see cref="MaxWeightTapsInBands"/> (2 threads, float32, against im2col's dw in the same process:
    /// VGG16's conv1_1 at batch 2, 27 taps, 3.4 against 4.8 ms; 5×5×3 at 224×224 6.8 against 8.6; 3×3×3 at 112×112,
    /// batch 8, 3.3 against 4.2). With many taps over several bands its 4 × 4 blocks stream the band from L2 once per
    /// block and lose: AlexNet's conv1 (363 taps) 15.0 against 11.5 ms, which stays on im2col.
    /// </summary>
    public static bool AppliesToWeights(Shape x, int filters, ConvSpec spec, int outH, int outW, int lanes) =>
        AppliesAtAnyWidth(x, filters, spec) && Wide(outW, lanes)
        && (x.C * spec.KernelH * spec.KernelW <= MaxWeightTapsInBands || new Band(x, spec, outH, outW, lanes).Count == 1);

    /// <summary>Taps C·F·F up to which dw goes directly whatever the number of bands.</summary>
    public const int MaxWeightTapsInBands = 128;

    /// <summary>Elements of the buffers a forward call rents (a padded band per worker and the repacked weights), or
    /// a backward-weights call (a padded band and dy band per worker, a dw and db partial per image; by filters, see
    /// <see cref="WeightsByFiltersWorkspaceElements"/>), the largest.</summary>
    public static long WorkspaceElements(Shape x, int filters, ConvSpec spec, int outH, int outW, int threads, int lanes)
    {
        var b = new Band(x, spec, outH, outW, lanes);
        int cff = x.C * spec.KernelH * spec.KernelW;
        long forward = ForwardWorkspaceElements(x, filters, spec, outH, outW, threads, lanes);
        long weights = (long)threads * (b.Elements + (long)filters * b.Rows * b.PaddedOutW) + (long)x.N * (filters * cff + filters);
        long byFilters = AppliesToWeightsByFilters(x, filters, spec, outH, outW, lanes)
            ? WeightsByFiltersWorkspaceElements(x, filters, spec, outH, outW, threads, lanes) : 0;
        return Math.Max(Math.Max(forward, weights), byFilters);
    }

    /// <summary>Elements a forward call rents (see <see cref="WorkspaceElements"/>).</summary>
    public static long ForwardWorkspaceElements(Shape x, int filters, ConvSpec spec, int outH, int outW, int threads, int lanes)
    {
        int cff = x.C * spec.KernelH * spec.KernelW;
        long packed = AppliesToForwardByFilters(x, filters, spec, outW, lanes) ? (long)PaddedFilters(filters, lanes) * cff : PackedWeights(cff, filters);
        return (long)threads * new Band(x, spec, outH, outW, lanes).Elements + packed;
    }

    private static int PackedWeights(int cff, int filters) => (filters + FilterBlock - 1) / FilterBlock * FilterBlock * cff;

    /// <summary>Lanes of the vectors the kernel runs on for <typeparamref name="T"/>.</summary>
    public static int Lanes<T>() where T : unmanaged =>
        Vector512.IsHardwareAccelerated ? Vector512<T>.Count : Vector256<T>.Count;

    // y[n, k, oh, ow] = b[k] + Σ_t w[k, t] · xp[tap t of (oh, ow)], the taps summed in order t = 0 … CFF − 1 (one FMA
    // each) and the bias added last, the same for every output whichever worker, band or block computes it.
    public static unsafe void Forward<T>(WorkerPool workers, BufferPool pool, ReadOnlySpan<T> x, Shape xShape, ReadOnlySpan<T> w,
        int filters, ReadOnlySpan<T> b, ConvSpec spec, int outH, int outW, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int lanes = Lanes<T>();
        var band = new Band(xShape, spec, outH, outW, lanes);
        int cff = xShape.C * spec.KernelH * spec.KernelW;
        var job = Cache<ForwardJob<T>>.Rent();
        bool byFilters = AppliesToForwardByFilters(xShape, filters, spec, outW, lanes);
        var packed = pool.Rent<T>(byFilters ? PaddedFilters(filters, lanes) * cff : PackedWeights(cff, filters), clear: false);
        var taps = job.Taps(cff);
        var slots = job.Slots(workers.Threads);
        try
        {
            if (byFilters) PackByFilters(w, filters, cff, PaddedFilters(filters, lanes), packed);
            else Pack(w, filters, cff, packed);
            band.TapOffsets(xShape.C, spec, taps);
            for (int i = 0; i < slots.Length; i++) slots[i] = pool.Rent<T>(band.Elements, clear: false);
            fixed (T* px = x, pb = b, py = y)
            {
                job.Set(band, xShape, filters, spec, outH, outW, packed, px, pb, b.Length, py, byFilters);
                workers.For(xShape.N * band.Count, job);
            }
        }
        finally
        {
            job.ReturnSlots(pool);
            pool.Return(packed);
            job.Clear();
            Cache<ForwardJob<T>>.Return(job);
        }
    }

    // dw[k, t] = Σ_n Σ_{oh, ow} dy[n, k, oh, ow] · xp_n[tap t of (oh, ow)];  db[k] = Σ_n Σ_{oh, ow} dy[n, k, oh, ow].
    // Each image sums into its own partial (its bands in order, lanes of a vector apart, then one horizontal sum per
    // band), and the partials are added in image order: the same bits whichever worker took which image.
    public static unsafe void BackwardWeights<T>(WorkerPool workers, BufferPool pool, ReadOnlySpan<T> dy, ReadOnlySpan<T> x, Shape xShape,
        int filters, ConvSpec spec, int outH, int outW, Span<T> dw, Span<T> db) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int lanes = Lanes<T>();
        var band = new Band(xShape, spec, outH, outW, lanes);
        int cff = xShape.C * spec.KernelH * spec.KernelW, perImage = filters * cff + filters;
        var job = Cache<WeightsJob<T>>.Rent();
        var partials = pool.Rent<T>(xShape.N * perImage, clear: true);
        var taps = job.Taps(cff);
        var slots = job.Slots(workers.Threads);
        try
        {
            band.TapOffsets(xShape.C, spec, taps);
            int dyBand = filters * band.Rows * band.PaddedOutW;
            for (int i = 0; i < slots.Length; i++) slots[i] = pool.Rent<T>(band.Elements + dyBand, clear: false);
            fixed (T* px = x, pdy = dy)
            {
                job.Set(band, xShape, filters, spec, outH, outW, partials, px, pdy);
                workers.For(xShape.N, job);
            }
            partials.AsSpan(0, filters * cff).CopyTo(dw);
            partials.AsSpan(filters * cff, filters).CopyTo(db);
            for (int n = 1; n < xShape.N; n++)
            {
                TensorPrimitives.Add(dw, partials.AsSpan(n * perImage, filters * cff), dw);
                TensorPrimitives.Add(db, partials.AsSpan(n * perImage + filters * cff, filters), db);
            }
        }
        finally
        {
            job.ReturnSlots(pool);
            pool.Return(partials);
            job.Clear();
            Cache<WeightsJob<T>>.Return(job);
        }
    }

    // packed[(blk·CFF + t)·8 + k'] = w[blk·8 + k', t], 0 for the filters past K: a tap's 8 weights side by side.
    private static void Pack<T>(ReadOnlySpan<T> w, int filters, int cff, Span<T> packed) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int blocks = (filters + FilterBlock - 1) / FilterBlock;
        for (int blk = 0; blk < blocks; blk++)
        {
            for (int kk = 0; kk < FilterBlock; kk++)
            {
                int k = blk * FilterBlock + kk;
                for (int t = 0; t < cff; t++) packed[(blk * cff + t) * FilterBlock + kk] = k < filters ? w[k * cff + t] : T.Zero;
            }
        }
    }

    /// <summary>How an image's output rows are cut into bands, and the padded buffer of one band.</summary>
    internal readonly struct Band
    {
        public Band(Shape x, ConvSpec spec, int outH, int outW, int lanes)
        {
            VectorsPerRow = (outW + lanes - 1) / lanes;
            PaddedOutW = VectorsPerRow * lanes;
            Phases = spec.StrideW;
            Mp = PaddedOutW + (spec.KernelW - 1) * spec.DilationW / spec.StrideW;
            int perRow = x.C * Phases * Mp;
            int reach = (spec.KernelH - 1) * spec.DilationH + 1;
            // The most output rows whose padded rows, (R − 1)·S_h + reach of them, fit the budget; at least one.
            int fit = (BandElements / Math.Max(perRow, 1) - reach) / spec.StrideH + 1;
            Rows = Math.Clamp(fit, 1, Math.Max(outH, 1));
            Count = (outH + Rows - 1) / Rows;
            PaddedRows = (Rows - 1) * spec.StrideH + reach;
            Elements = x.C * PaddedRows * Phases * Mp;
        }

        /// <summary>Output rows per band (the last band may have fewer).</summary>
        public int Rows { get; }
        /// <summary>Bands per image.</summary>
        public int Count { get; }
        /// <summary>Padded input rows a band of <see cref="Rows"/> output rows reads.</summary>
        public int PaddedRows { get; }
        public int Phases { get; }
        /// <summary>Elements of a padded row in one phase: W'' plus the taps' reach past it.</summary>
        public int Mp { get; }
        public int PaddedOutW { get; }
        public int VectorsPerRow { get; }
        public int Elements { get; }

        /// <summary>taps[t] = offset of tap t = (c, i, j) in the padded band, for output (0, 0).</summary>
        public void TapOffsets(int channels, ConvSpec spec, Span<int> taps)
        {
            int t = 0;
            for (int c = 0; c < channels; c++)
            for (int i = 0; i < spec.KernelH; i++)
            for (int j = 0; j < spec.KernelW; j++, t++)
            {
                int dj = j * spec.DilationW;
                taps[t] = ((c * PaddedRows + i * spec.DilationH) * Phases + dj % Phases) * Mp + dj / Phases;
            }
        }

        // dst[m] = src[m·S + offset] for m in [from, to), each inside the row.
        private static void Gather<T>(ReadOnlySpan<T> src, Span<T> dst, int from, int to, int stride, int offset)
        {
            if (to <= from) return;
            int iw = from * stride + offset;
            if (iw < 0 || (uint)(iw + (to - from - 1) * stride) >= (uint)src.Length || (uint)(to - 1) >= (uint)dst.Length)
                throw new InvalidOperationException($"direct convolution: band fill of outputs {from}–{to} outside its row");
            ref T s = ref MemoryMarshal.GetReference(src);
            ref T d = ref MemoryMarshal.GetReference(dst);
            for (int m = from; m < to; m++, iw += stride) Unsafe.Add(ref d, m) = Unsafe.Add(ref s, iw);
        }

        // dst[φ·mp + m] = src[4m + φ − pad] where that is inside the row (the caller zeroes the rest): 16 m of all four
        // phases from 4 vectors by 6 two-source permutes where the 64 elements are inside the row, Gather at the edges.
        // AlexNet's conv1 forward at one thread 16.4 against Gather's 16.8 ms (interleaved call by call, medians of 31).
        private static unsafe void Split4(ReadOnlySpan<float> src, Span<float> dst, int mp, int pad)
        {
            int w = src.Length;
            // m whose 4 elements 4m − pad … 4m − pad + 3 are all inside the row, and inside dst
            int vlo = (pad + 3) / 4, vhi = Math.Min(mp, (w + pad) / 4);
            int m = vlo;
            fixed (float* s = src, d = dst)
            {
                var even = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
                var odd = even + Vector512<int>.One;
                for (; m + 16 <= vhi; m += 16)
                {
                    float* p = s + 4 * m - pad;
                    var (a, b, c, e) = (Vector512.Load(p), Vector512.Load(p + 16), Vector512.Load(p + 32), Vector512.Load(p + 48));
                    var abEven = Avx512F.PermuteVar16x32x2(a, even, b);
                    var abOdd = Avx512F.PermuteVar16x32x2(a, odd, b);
                    var ceEven = Avx512F.PermuteVar16x32x2(c, even, e);
                    var ceOdd = Avx512F.PermuteVar16x32x2(c, odd, e);
                    Avx512F.PermuteVar16x32x2(abEven, even, ceEven).Store(d + m);
                    Avx512F.PermuteVar16x32x2(abOdd, even, ceOdd).Store(d + mp + m);
                    Avx512F.PermuteVar16x32x2(abEven, odd, ceEven).Store(d + 2 * mp + m);
                    Avx512F.PermuteVar16x32x2(abOdd, odd, ceOdd).Store(d + 3 * mp + m);
                }
            }
            for (int ph = 0; ph < 4; ph++)
            {
                int first = pad - ph, last = w - 1 + pad - ph;
                int lo = first <= 0 ? 0 : (first + 3) / 4, hi = last < 0 ? 0 : Math.Min(mp, last / 4 + 1);
                var row = dst.Slice(ph * mp, mp);
                if (m > vlo)
                {
                    Gather(src, row, lo, Math.Min(vlo, hi), 4, ph - pad);
                    Gather(src, row, Math.Max(m, lo), hi, 4, ph - pad);
                }
                else
                {
                    Gather(src, row, lo, hi, 4, ph - pad);
                }
            }
        }

        /// <summary>Fills the padded band for output rows oh0 … from image <paramref name="xn"/>: zero outside the input.</summary>
        public void Fill<T>(ReadOnlySpan<T> xn, int channels, int h, int w, ConvSpec spec, int oh0, Span<T> xp) where T : unmanaged
        {
            int r0 = oh0 * spec.StrideH - spec.PadH;
            bool split = Phases == 4 && typeof(T) == typeof(float) && Avx512F.IsSupported;
            for (int c = 0; c < channels; c++)
            {
                var plane = xn.Slice(c * h * w, h * w);
                for (int r = 0; r < PaddedRows; r++)
                {
                    int ih = r0 + r;
                    var rowP = xp.Slice((c * PaddedRows + r) * Phases * Mp, Phases * Mp);
                    if ((uint)ih >= (uint)h)
                    {
                        rowP.Clear();
                        continue;
                    }
                    var src = plane.Slice(ih * w, w);
                    for (int ph = 0; ph < Phases; ph++)
                    {
                        var dst = rowP.Slice(ph * Mp, Mp);
                        // dst[m] = src[m·S + φ − P]: inside for m in [lo, hi)
                        int first = spec.PadW - ph, last = w - 1 + spec.PadW - ph;
                        int lo = first <= 0 ? 0 : (first + Phases - 1) / Phases;
                        int hi = last < 0 ? 0 : Math.Min(Mp, last / Phases + 1);
                        if (hi <= lo)
                        {
                            dst.Clear();
                            continue;
                        }
                        ref T d0 = ref MemoryMarshal.GetReference(dst);
                        for (int m = 0; m < lo; m++) Unsafe.Add(ref d0, m) = default;   // a few elements: no call to Clear
                        for (int m = hi; m < Mp; m++) Unsafe.Add(ref d0, m) = default;
                        if (Phases == 1)
                        {
                            src.Slice(lo + ph - spec.PadW, hi - lo).CopyTo(dst[lo..hi]);
                        }
                        else if (!split)
                        {
                            Gather(src, dst, lo, hi, Phases, ph - spec.PadW);
                        }
                    }
                    if (split) Split4(MemoryMarshal.Cast<T, float>(src), MemoryMarshal.Cast<T, float>(rowP), Mp, spec.PadW);
                }
            }
        }
    }

    /// <summary>
    /// What the direct kernels' jobs keep between calls: the tap offsets and a buffer per worker (a padded band, and
    /// what else the job needs), both grown only, so that layers of different sizes taking turns with a job allocate
    /// nothing once warm.
    /// </summary>
    private abstract class DirectJob<T> where T : unmanaged
    {
        private int[] _taps = [];
        private T[][] _slots = [];

        /// <summary>Taps per output of the current call.</summary>
        protected int Cff { get; private set; }

        /// <summary>The current call's tap offsets (filled by the caller through <see cref="Taps"/>).</summary>
        protected ReadOnlySpan<int> TapOffsets => _taps.AsSpan(0, Cff);

        public Span<int> Taps(int cff)
        {
            if (_taps.Length < cff) _taps = new int[cff];
            Cff = cff;
            return _taps.AsSpan(0, cff);
        }

        public Span<T[]> Slots(int threads)
        {
            if (_slots.Length < threads) _slots = new T[threads][];
            return _slots.AsSpan(0, threads);
        }

        /// <summary>Worker <paramref name="worker"/>'s buffer.</summary>
        protected T[] Slot(int worker) => _slots[worker];

        /// <summary>Returns the call's buffers to the pool, leaving every slot empty.</summary>
        public void ReturnSlots(BufferPool pool)
        {
            for (int i = 0; i < _slots.Length; i++)
            {
                if (_slots[i] is { } s) pool.Return(s);
                _slots[i] = null!;
            }
        }
    }

    /// <summary>
    /// What the two weight-gradient jobs share: the call's geometry, the per-image partials and the pinned x and dy,
    /// set by <see cref="SetCall"/> and dropped by <see cref="Clear"/>; each job runs one image.
    /// </summary>
    private abstract unsafe class ImageWeightsJob<T> : DirectJob<T> where T : unmanaged
    {
        private T* _x;
        protected Band Band { get; private set; }
        protected Shape X { get; private set; } = Shape.Nchw(1, 1, 1, 1);
        protected int Filters { get; private set; }
        protected ConvSpec? Spec { get; private set; }
        protected int OutH { get; private set; }
        protected int OutW { get; private set; }
        protected T[] Partials { get; private set; } = [];
        /// <summary>dy, pinned by the caller: [N, K, H', W'].</summary>
        protected T* Dy { get; private set; }

        protected void SetCall(in Band band, Shape x, int filters, ConvSpec spec, int outH, int outW, T[] partials, T* px, T* pdy)
        {
            (Band, X, Filters, Spec, OutH, OutW, Partials) = (band, x, filters, spec, outH, outW, partials);
            _x = px;
            Dy = pdy;
        }

        public void Clear()
        {
            Partials = [];
            Spec = null;
            _x = Dy = null;
        }

        /// <summary>Image <paramref name="img"/>'s x [C, H, W].</summary>
        protected ReadOnlySpan<T> ImageX(int img) => new(_x + (long)img * X.C * X.H * X.W, X.C * X.H * X.W);

        /// <summary>Image <paramref name="img"/>'s dy [K, H', W'].</summary>
        protected ReadOnlySpan<T> ImageDy(int img) => new(Dy + (long)img * Filters * OutH * OutW, Filters * OutH * OutW);
    }

    /// <summary>One band of one image's output on the worker that takes it; operands pinned by the caller.</summary>
    private sealed unsafe class ForwardJob<T> : DirectJob<T>, IParallelWork where T : unmanaged, IFloatingPointIeee754<T>
    {
        private Band _band;
        private Shape _x = Shape.Nchw(1, 1, 1, 1);
        private int _filters, _outH, _outW, _bLength;
        private ConvSpec? _spec;
        private T[] _packed = [];
        private bool _byFilters;
        private T* _px, _pb, _py;

        public void Set(in Band band, Shape x, int filters, ConvSpec spec, int outH, int outW, T[] packed, T* px, T* pb, int bLength, T* py,
            bool byFilters)
        {
            (_band, _x, _filters, _spec, _outH, _outW, _packed, _byFilters) = (band, x, filters, spec, outH, outW, packed, byFilters);
            _px = px; _pb = pb; _py = py;
            _bLength = bLength;
        }

        public void Clear()
        {
            _packed = [];
            _spec = null;
            _px = _pb = _py = null;
        }

        public void Run(int index, int worker)
        {
            int img = index / _band.Count, oh0 = index % _band.Count * _band.Rows;
            int rows = Math.Min(_band.Rows, _outH - oh0);
            int inPerImage = _x.C * _x.H * _x.W, hw = _outH * _outW;
            var xn = new ReadOnlySpan<T>(_px + (long)img * inPerImage, inPerImage);
            var xp = Slot(worker).AsSpan(0, _band.Elements);
            _band.Fill(xn, _x.C, _x.H, _x.W, _spec!, oh0, xp);
            var yn = new Span<T>(_py + (long)img * _filters * hw, _filters * hw);
            var bias = new ReadOnlySpan<T>(_pb, _bLength);
            var taps = TapOffsets;
            int cff = Cff, blocks = (_filters + FilterBlock - 1) / FilterBlock;
            int rowStride = _spec!.StrideH * _band.Phases * _band.Mp;
            if (_byFilters)
            {
                ForwardByFilters(xp, taps, rowStride, rows, _outW, _packed, _filters, yn, bias, hw, oh0);
                return;
            }
            for (int blk = 0; blk < blocks; blk++)
            {
                var wBlock = _packed.AsSpan(blk * cff * FilterBlock, cff * FilterBlock);
                int k0 = blk * FilterBlock, kCount = Math.Min(FilterBlock, _filters - k0);
                var target = new Target<T>(yn, bias, k0, kCount, hw, oh0, _outW, _band.VectorsPerRow, rowStride);
                if (Vector512.IsHardwareAccelerated)
                    Pairs512(xp, rows * _band.VectorsPerRow, wBlock, taps, target);
                else
                    Pairs256(xp, rows * _band.VectorsPerRow, wBlock, taps, target);
            }
        }
    }

    /// <summary>One image of a backward-weights call: its bands in order, into its own partial dw and db.</summary>
    private sealed unsafe class WeightsJob<T> : ImageWeightsJob<T>, IParallelWork where T : unmanaged, IFloatingPointIeee754<T>
    {
        public void Set(in Band band, Shape x, int filters, ConvSpec spec, int outH, int outW, T[] partials, T* px, T* pdy) =>
            SetCall(band, x, filters, spec, outH, outW, partials, px, pdy);

        public void Run(int img, int worker)
        {
            int hw = OutH * OutW, cff = Cff, pw = Band.PaddedOutW;
            ReadOnlySpan<T> xn = ImageX(img), dyn = ImageDy(img);
            var xp = Slot(worker).AsSpan(0, Band.Elements);
            var dyp = Slot(worker).AsSpan(Band.Elements, Filters * Band.Rows * pw);
            var partial = Partials.AsSpan(img * (Filters * cff + Filters), Filters * cff + Filters);
            var dw = partial[..(Filters * cff)];
            var db = partial[(Filters * cff)..];
            for (int k = 0; k < Filters; k++) db[k] = TensorPrimitives.Sum(dyn.Slice(k * hw, hw));
            var taps = TapOffsets;
            int rowStride = Spec!.StrideH * Band.Phases * Band.Mp;
            for (int oh0 = 0; oh0 < OutH; oh0 += Band.Rows)
            {
                int rows = Math.Min(Band.Rows, OutH - oh0);
                Band.Fill(xn, X.C, X.H, X.W, Spec, oh0, xp);
                // dyp[k, r, ·] = dy[k, oh0 + r, ·] with zeros past W', so that the padded lanes add nothing.
                for (int k = 0; k < Filters; k++)
                {
                    for (int r = 0; r < rows; r++)
                    {
                        var dst = dyp.Slice((k * Band.Rows + r) * pw, pw);
                        dyn.Slice(k * hw + (oh0 + r) * OutW, OutW).CopyTo(dst);
                        dst[OutW..].Clear();
                    }
                }
                var source = new Source(Band.VectorsPerRow, rowStride, Band.Rows * pw);
                if (Vector512.IsHardwareAccelerated)
                    Weights512(xp, dyp, rows * Band.VectorsPerRow, Filters, taps, source, dw);
                else
                    Weights256(xp, dyp, rows * Band.VectorsPerRow, Filters, taps, source, dw);
            }
        }
    }

    /// <summary>Where output vector q reads the padded band (as <see cref="Target{T}.Input"/>) and filter k's dy.</summary>
    private readonly struct Source(int vpr, int rowStride, int dyPlane)
    {
        public int VectorsPerRow => vpr;
        public int RowStride => rowStride;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public int Input(int q, int lanes) => q / vpr * rowStride + q % vpr * lanes;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public int Dy(int k, int q, int lanes) => k * dyPlane + q * lanes;
    }

    /// <summary>
    /// Where a block's outputs go: filters k0 … k0 + kCount − 1 of the band from output row oh0, plus their bias. Output
    /// vector q of the band is row oh0 + q / vpr, columns (q mod vpr)·V …, and reads the padded band from
    /// <see cref="Input"/>(q).
    /// </summary>
    private readonly ref struct Target<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly Span<T> _yn;
        private readonly ReadOnlySpan<T> _bias;
        private readonly int _k0, _kCount, _hw, _oh0, _outW, _vpr, _rowStride;

        public Target(Span<T> yn, ReadOnlySpan<T> bias, int k0, int kCount, int hw, int oh0, int outW, int vpr, int rowStride)
        {
            _yn = yn;
            _bias = bias;
            (_k0, _kCount, _hw, _oh0, _outW, _vpr, _rowStride) = (k0, kCount, hw, oh0, outW, vpr, rowStride);
        }

        /// <summary>Offset in the padded band of output vector <paramref name="q"/>'s first tap-(0, 0) input.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public int Input(int q, int lanes) => q / _vpr * _rowStride + q % _vpr * lanes;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Store512(Vector512<T> acc, int kk, int q)
        {
            if (kk >= _kCount) return;
            if (!_bias.IsEmpty) acc += Vector512.Create(_bias[_k0 + kk]);
            int ow = q % _vpr * Vector512<T>.Count;
            var row = _yn.Slice((_k0 + kk) * _hw + (_oh0 + q / _vpr) * _outW, _outW);
            if (ow + Vector512<T>.Count <= _outW)
            {
                acc.StoreUnsafe(ref row[ow]);
                return;
            }
            for (int l = 0; ow + l < _outW; l++) row[ow + l] = acc.GetElement(l);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Store256(Vector256<T> acc, int kk, int q)
        {
            if (kk >= _kCount) return;
            if (!_bias.IsEmpty) acc += Vector256.Create(_bias[_k0 + kk]);
            int ow = q % _vpr * Vector256<T>.Count;
            var row = _yn.Slice((_k0 + kk) * _hw + (_oh0 + q / _vpr) * _outW, _outW);
            if (ow + Vector256<T>.Count <= _outW)
            {
                acc.StoreUnsafe(ref row[ow]);
                return;
            }
            for (int l = 0; ow + l < _outW; l++) row[ow + l] = acc.GetElement(l);
        }
    }

    // Output vectors q and q + 1 of the band (the last alone) for 8 filters: acc[kk, v] = Σ_t w[kk, t] · xp[Input(q + v) + taps[t] …].
    private static void Pairs512<T>(ReadOnlySpan<T> xp, int vectors, ReadOnlySpan<T> wBlock, ReadOnlySpan<int> taps,
        in Target<T> target) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int lanes = Vector512<T>.Count;
        ref T xRef = ref MemoryMarshal.GetReference(xp);
        ref T wRef = ref MemoryMarshal.GetReference(wBlock);
        ref int tapRef = ref MemoryMarshal.GetReference(taps);
        int cff = taps.Length;
        for (int q = 0; q < vectors; q += 2)
        {
            // A lone last vector is computed twice and stored once: the sums of a vector never depend on its partner.
            int q1 = Math.Min(q + 1, vectors - 1);
            Vector512<T> a00 = default, a01 = default, a10 = default, a11 = default, a20 = default, a21 = default, a30 = default, a31 = default;
            Vector512<T> a40 = default, a41 = default, a50 = default, a51 = default, a60 = default, a61 = default, a70 = default, a71 = default;
            ref T x0 = ref Unsafe.Add(ref xRef, target.Input(q, lanes));
            ref T x1 = ref Unsafe.Add(ref xRef, target.Input(q1, lanes));
            ref T wt = ref wRef;
            for (int t = 0; t < cff; t++, wt = ref Unsafe.Add(ref wt, FilterBlock))
            {
                int tap = Unsafe.Add(ref tapRef, t);
                var v0 = Vector512.LoadUnsafe(ref Unsafe.Add(ref x0, tap));
                var v1 = Vector512.LoadUnsafe(ref Unsafe.Add(ref x1, tap));
                var w0 = Vector512.Create(wt);
                a00 = Fma(v0, w0, a00); a01 = Fma(v1, w0, a01);
                var w1 = Vector512.Create(Unsafe.Add(ref wt, 1));
                a10 = Fma(v0, w1, a10); a11 = Fma(v1, w1, a11);
                var w2 = Vector512.Create(Unsafe.Add(ref wt, 2));
                a20 = Fma(v0, w2, a20); a21 = Fma(v1, w2, a21);
                var w3 = Vector512.Create(Unsafe.Add(ref wt, 3));
                a30 = Fma(v0, w3, a30); a31 = Fma(v1, w3, a31);
                var w4 = Vector512.Create(Unsafe.Add(ref wt, 4));
                a40 = Fma(v0, w4, a40); a41 = Fma(v1, w4, a41);
                var w5 = Vector512.Create(Unsafe.Add(ref wt, 5));
                a50 = Fma(v0, w5, a50); a51 = Fma(v1, w5, a51);
                var w6 = Vector512.Create(Unsafe.Add(ref wt, 6));
                a60 = Fma(v0, w6, a60); a61 = Fma(v1, w6, a61);
                var w7 = Vector512.Create(Unsafe.Add(ref wt, 7));
                a70 = Fma(v0, w7, a70); a71 = Fma(v1, w7, a71);
            }
            target.Store512(a00, 0, q); target.Store512(a10, 1, q); target.Store512(a20, 2, q); target.Store512(a30, 3, q);
            target.Store512(a40, 4, q); target.Store512(a50, 5, q); target.Store512(a60, 6, q); target.Store512(a70, 7, q);
            if (q1 == q) continue;
            target.Store512(a01, 0, q1); target.Store512(a11, 1, q1); target.Store512(a21, 2, q1); target.Store512(a31, 3, q1);
            target.Store512(a41, 4, q1); target.Store512(a51, 5, q1); target.Store512(a61, 6, q1); target.Store512(a71, 7, q1);
        }
    }

    // Output vectors q and q + 1 of the band (the last alone) for 8 filters: acc[kk, v] = Σ_t w[kk, t] · xp[Input(q + v) + taps[t] …].
    private static void Pairs256<T>(ReadOnlySpan<T> xp, int vectors, ReadOnlySpan<T> wBlock, ReadOnlySpan<int> taps,
        in Target<T> target) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int lanes = Vector256<T>.Count;
        ref T xRef = ref MemoryMarshal.GetReference(xp);
        ref T wRef = ref MemoryMarshal.GetReference(wBlock);
        ref int tapRef = ref MemoryMarshal.GetReference(taps);
        int cff = taps.Length;
        for (int q = 0; q < vectors; q += 2)
        {
            // A lone last vector is computed twice and stored once: the sums of a vector never depend on its partner.
            int q1 = Math.Min(q + 1, vectors - 1);
            Vector256<T> a00 = default, a01 = default, a10 = default, a11 = default, a20 = default, a21 = default, a30 = default, a31 = default;
            Vector256<T> a40 = default, a41 = default, a50 = default, a51 = default, a60 = default, a61 = default, a70 = default, a71 = default;
            ref T x0 = ref Unsafe.Add(ref xRef, target.Input(q, lanes));
            ref T x1 = ref Unsafe.Add(ref xRef, target.Input(q1, lanes));
            ref T wt = ref wRef;
            for (int t = 0; t < cff; t++, wt = ref Unsafe.Add(ref wt, FilterBlock))
            {
                int tap = Unsafe.Add(ref tapRef, t);
                var v0 = Vector256.LoadUnsafe(ref Unsafe.Add(ref x0, tap));
                var v1 = Vector256.LoadUnsafe(ref Unsafe.Add(ref x1, tap));
                var w0 = Vector256.Create(wt);
                a00 = Fma(v0, w0, a00); a01 = Fma(v1, w0, a01);
                var w1 = Vector256.Create(Unsafe.Add(ref wt, 1));
                a10 = Fma(v0, w1, a10); a11 = Fma(v1, w1, a11);
                var w2 = Vector256.Create(Unsafe.Add(ref wt, 2));
                a20 = Fma(v0, w2, a20); a21 = Fma(v1, w2, a21);
                var w3 = Vector256.Create(Unsafe.Add(ref wt, 3));
                a30 = Fma(v0, w3, a30); a31 = Fma(v1, w3, a31);
                var w4 = Vector256.Create(Unsafe.Add(ref wt, 4));
                a40 = Fma(v0, w4, a40); a41 = Fma(v1, w4, a41);
                var w5 = Vector256.Create(Unsafe.Add(ref wt, 5));
                a50 = Fma(v0, w5, a50); a51 = Fma(v1, w5, a51);
                var w6 = Vector256.Create(Unsafe.Add(ref wt, 6));
                a60 = Fma(v0, w6, a60); a61 = Fma(v1, w6, a61);
                var w7 = Vector256.Create(Unsafe.Add(ref wt, 7));
                a70 = Fma(v0, w7, a70); a71 = Fma(v1, w7, a71);
            }
            target.Store256(a00, 0, q); target.Store256(a10, 1, q); target.Store256(a20, 2, q); target.Store256(a30, 3, q);
            target.Store256(a40, 4, q); target.Store256(a50, 5, q); target.Store256(a60, 6, q); target.Store256(a70, 7, q);
            if (q1 == q) continue;
            target.Store256(a01, 0, q1); target.Store256(a11, 1, q1); target.Store256(a21, 2, q1); target.Store256(a31, 3, q1);
            target.Store256(a41, 4, q1); target.Store256(a51, 5, q1); target.Store256(a61, 6, q1); target.Store256(a71, 7, q1);
        }
    }

    // dw[k, t] += Σ_lanes Σ_q dy[k, q] · xp[Input(q) + taps[t]] for a block of 4 filters × 4 taps at a time (a block
    // past K or CFF repeats the last filter or tap and stores it once).
    private static void Weights512<T>(ReadOnlySpan<T> xp, ReadOnlySpan<T> dyp, int vectors, int filters, ReadOnlySpan<int> taps,
        in Source source, Span<T> dw) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int lanes = Vector512<T>.Count, cff = taps.Length;
        ref T xRef = ref MemoryMarshal.GetReference(xp);
        ref T dyRef = ref MemoryMarshal.GetReference(dyp);
        for (int k0 = 0; k0 < filters; k0 += 4)
        {
            int k1 = Math.Min(k0 + 1, filters - 1), k2 = Math.Min(k0 + 2, filters - 1), k3 = Math.Min(k0 + 3, filters - 1);
            for (int t0 = 0; t0 < cff; t0 += 4)
            {
                int t1 = taps[Math.Min(t0 + 1, cff - 1)], t2 = taps[Math.Min(t0 + 2, cff - 1)], t3 = taps[Math.Min(t0 + 3, cff - 1)];
                int tt = taps[t0];
                Vector512<T> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
                Vector512<T> a20 = default, a21 = default, a22 = default, a23 = default, a30 = default, a31 = default, a32 = default, a33 = default;
                for (int q = 0, r = 0, v = 0; q < vectors; q++)
                {
                    // q = r·vpr + v without a division per step
                    ref T xq = ref Unsafe.Add(ref xRef, r * source.RowStride + v * lanes);
                    if (++v == source.VectorsPerRow)
                    {
                        v = 0;
                        r++;
                    }
                    var x0 = Vector512.LoadUnsafe(ref Unsafe.Add(ref xq, tt));
                    var x1 = Vector512.LoadUnsafe(ref Unsafe.Add(ref xq, t1));
                    var x2 = Vector512.LoadUnsafe(ref Unsafe.Add(ref xq, t2));
                    var x3 = Vector512.LoadUnsafe(ref Unsafe.Add(ref xq, t3));
                    var d = Vector512.LoadUnsafe(ref Unsafe.Add(ref dyRef, source.Dy(k0, q, lanes)));
                    a00 = Fma(d, x0, a00); a01 = Fma(d, x1, a01); a02 = Fma(d, x2, a02); a03 = Fma(d, x3, a03);
                    d = Vector512.LoadUnsafe(ref Unsafe.Add(ref dyRef, source.Dy(k1, q, lanes)));
                    a10 = Fma(d, x0, a10); a11 = Fma(d, x1, a11); a12 = Fma(d, x2, a12); a13 = Fma(d, x3, a13);
                    d = Vector512.LoadUnsafe(ref Unsafe.Add(ref dyRef, source.Dy(k2, q, lanes)));
                    a20 = Fma(d, x0, a20); a21 = Fma(d, x1, a21); a22 = Fma(d, x2, a22); a23 = Fma(d, x3, a23);
                    d = Vector512.LoadUnsafe(ref Unsafe.Add(ref dyRef, source.Dy(k3, q, lanes)));
                    a30 = Fma(d, x0, a30); a31 = Fma(d, x1, a31); a32 = Fma(d, x2, a32); a33 = Fma(d, x3, a33);
                }
                AddTo(dw, cff, filters, k0, t0, a00, a01, a02, a03);
                AddTo(dw, cff, filters, k0 + 1, t0, a10, a11, a12, a13);
                AddTo(dw, cff, filters, k0 + 2, t0, a20, a21, a22, a23);
                AddTo(dw, cff, filters, k0 + 3, t0, a30, a31, a32, a33);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddTo<T>(Span<T> dw, int cff, int filters, int k, int t0, Vector512<T> a0, Vector512<T> a1, Vector512<T> a2, Vector512<T> a3)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (k >= filters) return;
        var row = dw.Slice(k * cff, cff);
        row[t0] += Vector512.Sum(a0);
        if (t0 + 1 < cff) row[t0 + 1] += Vector512.Sum(a1);
        if (t0 + 2 < cff) row[t0 + 2] += Vector512.Sum(a2);
        if (t0 + 3 < cff) row[t0 + 3] += Vector512.Sum(a3);
    }

    // dw[k, t] += Σ_lanes Σ_q dy[k, q] · xp[Input(q) + taps[t]] for a block of 4 filters × 4 taps at a time (a block
    // past K or CFF repeats the last filter or tap and stores it once).
    private static void Weights256<T>(ReadOnlySpan<T> xp, ReadOnlySpan<T> dyp, int vectors, int filters, ReadOnlySpan<int> taps,
        in Source source, Span<T> dw) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int lanes = Vector256<T>.Count, cff = taps.Length;
        ref T xRef = ref MemoryMarshal.GetReference(xp);
        ref T dyRef = ref MemoryMarshal.GetReference(dyp);
        for (int k0 = 0; k0 < filters; k0 += 4)
        {
            int k1 = Math.Min(k0 + 1, filters - 1), k2 = Math.Min(k0 + 2, filters - 1), k3 = Math.Min(k0 + 3, filters - 1);
            for (int t0 = 0; t0 < cff; t0 += 4)
            {
                int t1 = taps[Math.Min(t0 + 1, cff - 1)], t2 = taps[Math.Min(t0 + 2, cff - 1)], t3 = taps[Math.Min(t0 + 3, cff - 1)];
                int tt = taps[t0];
                Vector256<T> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
                Vector256<T> a20 = default, a21 = default, a22 = default, a23 = default, a30 = default, a31 = default, a32 = default, a33 = default;
                for (int q = 0, r = 0, v = 0; q < vectors; q++)
                {
                    // q = r·vpr + v without a division per step
                    ref T xq = ref Unsafe.Add(ref xRef, r * source.RowStride + v * lanes);
                    if (++v == source.VectorsPerRow)
                    {
                        v = 0;
                        r++;
                    }
                    var x0 = Vector256.LoadUnsafe(ref Unsafe.Add(ref xq, tt));
                    var x1 = Vector256.LoadUnsafe(ref Unsafe.Add(ref xq, t1));
                    var x2 = Vector256.LoadUnsafe(ref Unsafe.Add(ref xq, t2));
                    var x3 = Vector256.LoadUnsafe(ref Unsafe.Add(ref xq, t3));
                    var d = Vector256.LoadUnsafe(ref Unsafe.Add(ref dyRef, source.Dy(k0, q, lanes)));
                    a00 = Fma(d, x0, a00); a01 = Fma(d, x1, a01); a02 = Fma(d, x2, a02); a03 = Fma(d, x3, a03);
                    d = Vector256.LoadUnsafe(ref Unsafe.Add(ref dyRef, source.Dy(k1, q, lanes)));
                    a10 = Fma(d, x0, a10); a11 = Fma(d, x1, a11); a12 = Fma(d, x2, a12); a13 = Fma(d, x3, a13);
                    d = Vector256.LoadUnsafe(ref Unsafe.Add(ref dyRef, source.Dy(k2, q, lanes)));
                    a20 = Fma(d, x0, a20); a21 = Fma(d, x1, a21); a22 = Fma(d, x2, a22); a23 = Fma(d, x3, a23);
                    d = Vector256.LoadUnsafe(ref Unsafe.Add(ref dyRef, source.Dy(k3, q, lanes)));
                    a30 = Fma(d, x0, a30); a31 = Fma(d, x1, a31); a32 = Fma(d, x2, a32); a33 = Fma(d, x3, a33);
                }
                AddTo(dw, cff, filters, k0, t0, a00, a01, a02, a03);
                AddTo(dw, cff, filters, k0 + 1, t0, a10, a11, a12, a13);
                AddTo(dw, cff, filters, k0 + 2, t0, a20, a21, a22, a23);
                AddTo(dw, cff, filters, k0 + 3, t0, a30, a31, a32, a33);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddTo<T>(Span<T> dw, int cff, int filters, int k, int t0, Vector256<T> a0, Vector256<T> a1, Vector256<T> a2, Vector256<T> a3)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (k >= filters) return;
        var row = dw.Slice(k * cff, cff);
        row[t0] += Vector256.Sum(a0);
        if (t0 + 1 < cff) row[t0 + 1] += Vector256.Sum(a1);
        if (t0 + 2 < cff) row[t0 + 2] += Vector256.Sum(a2);
        if (t0 + 3 < cff) row[t0 + 3] += Vector256.Sum(a3);
    }
}
