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

// The weight gradient of a first layer with many taps (AlexNet's conv1: 11×11×3 = 363, stride 4) as a product over each
// image's outputs p that reads the input in place: dwᵀ[t, k] = Σ_p X[t, p] · dy[k, p], X[t, p] = xp[taps[t] + Input(p)]
// from the padded band (DirectConvolution's layout, no im2col matrix). A pass takes 8 taps × 3 vectors of filters
// (24 accumulators): per output, 8 inputs broadcast and 3 vectors of dy read from a copy laid out [filter block, p, 3V]
// (transposed 8 × 8 in registers), 24 FMAs — the shape of a GEMM micro-kernel, so no FMA waits on a load of its own —
// and only the valid outputs of a row are visited (none of the lanes the forward's vectors along a row spend on its
// tail). Against im2col + OpenBLAS at 1 thread (float32, 8 images): AlexNet's conv1 17.4 against 23.3 ms, the passes
// themselves at ~110 GFLOP/s (94% of a core's FMA peak); 12 taps × 2 vectors measured 3% slower.

internal static partial class DirectConvolution
{
    /// <summary>Taps per pass of <see cref="BackwardWeightsByFilters{T}"/>: 8 with 3 vectors of filters, 24 with one.</summary>
    public const int WeightTapBlock = 8, WideTapBlock = 24;

    /// <summary>Vectors of filters per pass.</summary>
    private const int FilterVectors = 3;

    /// <summary>
    /// Whether dw and db go by filters (<see cref="BackwardWeightsByFilters{T}"/>), where the forward is direct and
    /// Vector512 is accelerated: with 3 vectors of filters a pass where whole blocks of 3 pad at most an eighth of them
    /// and dw is not direct already (<see cref="AppliesToWeights"/>: more than <see cref="MaxWeightTapsInBands"/> taps
    /// over several bands; AlexNet's and ZFNet's conv1: 96 filters, 2 blocks in float32), with one vector (24 taps a
    /// pass) where the filters fill half a vector to a whole one (cifar's conv1: 16), in place of the direct 4 × 4
    /// blocks. Measured (2 threads, float32, interleaved call by call, medians of 41): AlexNet's conv1 at batch 8 9.2
    /// against im2col + OpenBLAS's 12.5 ms, a ZFNet-like 7×7 / 2 conv1 on 225 × 225 16.0 against 21.8; 5×5×3 → 16 at
    /// 64 × 64, batch 16, 2.6 against the 4 × 4 blocks' 5.7–7.0, cifar's conv1 at batch 64 2.26 against 2.32.
    /// </summary>
    public static bool AppliesToWeightsByFilters(Shape x, int filters, ConvSpec spec, int outH, int outW, int lanes) =>
        Vector512.IsHardwareAccelerated && WeightVectors(filters, lanes) is int v && v > 0 && Applies(x, filters, spec, outW, lanes)
        && (v == 1 || !AppliesToWeights(x, filters, spec, outH, outW, lanes));

    /// <summary>
    /// Whether the forward goes by filters (<see cref="ForwardByFilters{T}"/>): where it is direct, Vector512 is
    /// accelerated, whole blocks of 3 vectors of filters leave at most an eighth of them as padding, and the vectors
    /// along a row would leave at least an eighth of their lanes idle (AlexNet's conv1: 55 outputs a row in 4 vectors of
    /// 16). The sums are the same as the vectors along a row compute (taps in order, one FMA each, the bias last), so
    /// the two give the same bits. Measured (float32, batch 8, interleaved call by call, medians of 41): AlexNet's conv1
    /// 9.0 against 10.1 ms at 2 threads, 18.4 against 19.7 at 1.
    /// </summary>
    public static bool AppliesToForwardByFilters(Shape x, int filters, ConvSpec spec, int outW, int lanes) =>
        Vector512.IsHardwareAccelerated && 8L * PaddedFilters(filters, lanes) <= 9L * filters
        && 8 * ((outW + lanes - 1) / lanes * lanes - outW) >= (outW + lanes - 1) / lanes * lanes && Applies(x, filters, spec, outW, lanes);

    // packed[(kb·CFF + t)·3V + j] = w[kb·3V + j, t], 0 for the filters past K: a tap's block of filters side by side.
    private static void PackByFilters<T>(ReadOnlySpan<T> w, int filters, int cff, int padded, Span<T> packed) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int block = FilterVectors * Vector512<T>.Count;
        for (int k = 0; k < padded; k++)
        {
            int kb = k / block, j = k % block;
            for (int t = 0; t < cff; t++) packed[(kb * cff + t) * block + j] = k < filters ? w[k * cff + t] : T.Zero;
        }
    }

    // y[k, oh0 + r, ow] = b[k] + Σ_t w[k, t] · xp[taps[t] + r·rowStride + ow] for a band: blocks of 8 outputs along a row
    // × 3 vectors of filters, the 8 inputs of a tap broadcast against the tap's packed filters; a row's last block reads
    // the padded band past W' (inside it: W'' ≥ 8·⌈W' / 8⌉) and stores only the outputs that exist. Meanwhile each call
    // prefetches a share of the lines of the band's output row that comes next, so that the transposed stores (8
    // elements into each of 3V rows H'·W' apart) find their lines in cache: AlexNet's conv1 at one thread 16.6–16.8
    // against 17.0–17.2 ms (interleaved call by call, medians of 31; prefetching the next band's input rows as well,
    // items of several bands, measured no faster).
    private static unsafe void ForwardByFilters<T>(ReadOnlySpan<T> xp, ReadOnlySpan<int> taps, int rowStride, int rows, int outW, ReadOnlySpan<T> packed,
        int filters, Span<T> yn, ReadOnlySpan<T> bias, int hw, int oh0) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int lanes = Vector512<T>.Count, block = FilterVectors * lanes, cff = taps.Length, blocksPerRow = (outW + 7) / 8;
        Span<T> tile = stackalloc T[8 * 3 * 16];   // output i of filter k0 + j at i·3V + j
        T* y0 = (T*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(yn));
        for (int k0 = 0; k0 < filters; k0 += block)
        {
            var wBlock = packed.Slice(k0 / block * cff * block, cff * block);
            for (int r = 0; r < rows; r++)
            {
                // The row after this one in the loops' order: the next row, else the next block's first.
                T* after = r + 1 < rows ? y0 + k0 * hw + (oh0 + r + 1) * outW : k0 + block < filters ? y0 + (k0 + block) * hw + oh0 * outW : null;
                int afterFilters = Math.Min(block, r + 1 < rows ? filters - k0 : filters - k0 - block);
                for (int ow0 = 0; ow0 < outW; ow0 += 8)
                {
                    if (after != null) PrefetchRows(after, afterFilters, ow0 / 8, blocksPerRow, outW, hw);
                    int count = Math.Min(8, outW - ow0), kCount = Math.Min(block, filters - k0);
                    bool whole = typeof(T) == typeof(float) && count == 8 && kCount == block;
                    // A whole block gets the bias in registers (added to each output's sum last, as below), then its 8 × 8
                    // blocks transposed into the filters' rows.
                    OutputBlock(xp, taps, r * rowStride + ow0, wBlock, tile, whole && !bias.IsEmpty ? bias.Slice(k0, block) : default);
                    if (whole)
                    {
                        StoreTransposed(MemoryMarshal.Cast<T, float>(tile), block, MemoryMarshal.Cast<T, float>(yn), k0 * hw + (oh0 + r) * outW + ow0, hw);
                        continue;
                    }
                    for (int j = 0; j < kCount; j++)
                    {
                        int k = k0 + j;
                        var dst = yn.Slice(k * hw + (oh0 + r) * outW + ow0, count);
                        T b = bias.IsEmpty ? T.Zero : bias[k];
                        for (int i = 0; i < count; i++) dst[i] = bias.IsEmpty ? tile[i * block + j] : tile[i * block + j] + b;
                    }
                }
            }
        }
    }

    // Prefetches share `part` of `parts` of the rows of `filters` filters (hw apart) that start at `row`, outW elements each.
    private static unsafe void PrefetchRows<T>(T* row, int filters, int part, int parts, int outW, int hw) where T : unmanaged
    {
        if (!Sse.IsSupported) return;
        int perLine = 64 / sizeof(T);
        for (int j = part * filters / parts, to = (part + 1) * filters / parts; j < to; j++)
        {
            T* at = row + (long)j * hw;
            for (int i = 0; i < outW; i += perLine) Sse.Prefetch0(at + i);
            Sse.Prefetch0(at + outW - 1);
        }
    }

    // y[at + (8m + j)·hw + i] = tile[i·block + 8m + j] for the block's filters 8m + j and outputs i < 8.
    private static unsafe void StoreTransposed(ReadOnlySpan<float> tile, int block, Span<float> y, int at, int hw)
    {
        fixed (float* t = tile)
        {
            for (int m = 0; m < block; m += 8) Transpose8x8(t + m, block, ref y[at + m * hw], hw);
        }
    }

    // tile[i·3V + j] = Σ_t packed[t·3V + j] · xp[start + taps[t] + i] (+ bias[j] after the sum, where given) for 8 outputs i
    // and the block's 3V filters j.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void OutputBlock<T>(ReadOnlySpan<T> xp, ReadOnlySpan<int> taps, int start, ReadOnlySpan<T> wBlock, Span<T> tile, ReadOnlySpan<T> bias)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int lanes = Vector512<T>.Count, cff = taps.Length;
        Vector512<T> a00 = default, a01 = default, a02 = default, a10 = default, a11 = default, a12 = default, a20 = default, a21 = default;
        Vector512<T> a22 = default, a30 = default, a31 = default, a32 = default, a40 = default, a41 = default, a42 = default, a50 = default;
        Vector512<T> a51 = default, a52 = default, a60 = default, a61 = default, a62 = default, a70 = default, a71 = default, a72 = default;
        ref T xs = ref Unsafe.Add(ref MemoryMarshal.GetReference(xp), start);
        ref T wt = ref MemoryMarshal.GetReference(wBlock);
        ref int tapRef = ref MemoryMarshal.GetReference(taps);
        for (int t = 0; t < cff; t++, wt = ref Unsafe.Add(ref wt, 3 * lanes))
        {
            ref T xq = ref Unsafe.Add(ref xs, Unsafe.Add(ref tapRef, t));
            var w0 = Vector512.LoadUnsafe(ref wt);
            var w1 = Vector512.LoadUnsafe(ref wt, (nuint)lanes);
            var w2 = Vector512.LoadUnsafe(ref wt, (nuint)(2 * lanes));
            var x = Vector512.Create(xq); a00 = Fma(x, w0, a00); a01 = Fma(x, w1, a01); a02 = Fma(x, w2, a02);
            x = Vector512.Create(Unsafe.Add(ref xq, 1)); a10 = Fma(x, w0, a10); a11 = Fma(x, w1, a11); a12 = Fma(x, w2, a12);
            x = Vector512.Create(Unsafe.Add(ref xq, 2)); a20 = Fma(x, w0, a20); a21 = Fma(x, w1, a21); a22 = Fma(x, w2, a22);
            x = Vector512.Create(Unsafe.Add(ref xq, 3)); a30 = Fma(x, w0, a30); a31 = Fma(x, w1, a31); a32 = Fma(x, w2, a32);
            x = Vector512.Create(Unsafe.Add(ref xq, 4)); a40 = Fma(x, w0, a40); a41 = Fma(x, w1, a41); a42 = Fma(x, w2, a42);
            x = Vector512.Create(Unsafe.Add(ref xq, 5)); a50 = Fma(x, w0, a50); a51 = Fma(x, w1, a51); a52 = Fma(x, w2, a52);
            x = Vector512.Create(Unsafe.Add(ref xq, 6)); a60 = Fma(x, w0, a60); a61 = Fma(x, w1, a61); a62 = Fma(x, w2, a62);
            x = Vector512.Create(Unsafe.Add(ref xq, 7)); a70 = Fma(x, w0, a70); a71 = Fma(x, w1, a71); a72 = Fma(x, w2, a72);
        }
        if (!bias.IsEmpty)
        {
            ref T br = ref MemoryMarshal.GetReference(bias);
            var (b0, b1, b2) = (Vector512.LoadUnsafe(ref br), Vector512.LoadUnsafe(ref br, (nuint)lanes), Vector512.LoadUnsafe(ref br, (nuint)(2 * lanes)));
            a00 += b0; a01 += b1; a02 += b2; a10 += b0; a11 += b1; a12 += b2; a20 += b0; a21 += b1; a22 += b2; a30 += b0; a31 += b1; a32 += b2;
            a40 += b0; a41 += b1; a42 += b2; a50 += b0; a51 += b1; a52 += b2; a60 += b0; a61 += b1; a62 += b2; a70 += b0; a71 += b1; a72 += b2;
        }
        ref T o = ref MemoryMarshal.GetReference(tile);
        nuint v = (nuint)lanes, row = 3 * v;
        a00.StoreUnsafe(ref o, 0); a01.StoreUnsafe(ref o, v); a02.StoreUnsafe(ref o, 2 * v);
        a10.StoreUnsafe(ref o, row); a11.StoreUnsafe(ref o, row + v); a12.StoreUnsafe(ref o, row + 2 * v);
        a20.StoreUnsafe(ref o, 2 * row); a21.StoreUnsafe(ref o, 2 * row + v); a22.StoreUnsafe(ref o, 2 * row + 2 * v);
        a30.StoreUnsafe(ref o, 3 * row); a31.StoreUnsafe(ref o, 3 * row + v); a32.StoreUnsafe(ref o, 3 * row + 2 * v);
        a40.StoreUnsafe(ref o, 4 * row); a41.StoreUnsafe(ref o, 4 * row + v); a42.StoreUnsafe(ref o, 4 * row + 2 * v);
        a50.StoreUnsafe(ref o, 5 * row); a51.StoreUnsafe(ref o, 5 * row + v); a52.StoreUnsafe(ref o, 5 * row + 2 * v);
        a60.StoreUnsafe(ref o, 6 * row); a61.StoreUnsafe(ref o, 6 * row + v); a62.StoreUnsafe(ref o, 6 * row + 2 * v);
        a70.StoreUnsafe(ref o, 7 * row); a71.StoreUnsafe(ref o, 7 * row + v); a72.StoreUnsafe(ref o, 7 * row + 2 * v);
    }

    /// <summary>Elements <see cref="BackwardWeightsByFilters{T}"/> rents: a padded band and a dy copy per worker, and
    /// a dwᵀ and db partial per image.</summary>
    public static long WeightsByFiltersWorkspaceElements(Shape x, int filters, ConvSpec spec, int outH, int outW, int threads, int lanes)
    {
        var b = new Band(x, spec, outH, outW, lanes);
        int padded = PaddedFilters(filters, lanes, Math.Max(1, WeightVectors(filters, lanes))), cff = x.C * spec.KernelH * spec.KernelW;
        return (long)threads * (b.Elements + (long)padded * b.Rows * outW) + (long)x.N * ((long)cff * padded + filters);
    }

    // Filters rounded up to whole blocks of `vectors` vectors: dy's copy is zero past K, so the extra columns add nothing.
    private static int PaddedFilters(int filters, int lanes, int vectors = FilterVectors) => (filters + vectors * lanes - 1) / (vectors * lanes) * (vectors * lanes);

    // Vectors of filters a weight-gradient pass takes: 3 where whole blocks of 3 pad at most an eighth of the filters,
    // 1 where the filters fill half a vector to a whole one (cifar's conv1: 16), else 0 (none).
    private static int WeightVectors(int filters, int lanes) =>
        8L * PaddedFilters(filters, lanes) <= 9L * filters ? FilterVectors : filters <= lanes && 2 * filters >= lanes ? 1 : 0;


    // dw[k, t] = Σ_n Σ_p dy[n, k, p] · X_n[t, p];  db[k] = Σ_n Σ_p dy[n, k, p]. Each image sums into its own partial
    // dwᵀ (its bands in order, each band's outputs in row order, then added to the partial), and the partials are
    // added in image order and transposed into dw: the same bits whichever worker took which image.
    public static unsafe void BackwardWeightsByFilters<T>(WorkerPool workers, BufferPool pool, ReadOnlySpan<T> dy, ReadOnlySpan<T> x,
        Shape xShape, int filters, ConvSpec spec, int outH, int outW, Span<T> dw, Span<T> db) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int lanes = Vector512<T>.Count;
        var band = new Band(xShape, spec, outH, outW, lanes);
        int vectors = WeightVectors(filters, lanes);
        int cff = xShape.C * spec.KernelH * spec.KernelW, padded = PaddedFilters(filters, lanes, vectors);
        int perImage = cff * padded + filters;
        var job = Cache<FiltersWeightsJob<T>>.Rent();
        var partials = pool.Rent<T>(xShape.N * perImage, clear: false);
        var taps = job.Taps(cff);
        var slots = job.Slots(workers.Threads);
        try
        {
            band.TapOffsets(xShape.C, spec, taps);
            for (int i = 0; i < slots.Length; i++) slots[i] = pool.Rent<T>(band.Elements + padded * band.Rows * outW, clear: false);
            fixed (T* px = x, pdy = dy)
            {
                job.Set(band, xShape, filters, padded, vectors, spec, outH, outW, partials, px, pdy);
                workers.For(xShape.N, job);
            }
            var sum = partials.AsSpan(0, cff * padded);
            for (int n = 1; n < xShape.N; n++) TensorPrimitives.Add(sum, partials.AsSpan(n * perImage, cff * padded), sum);
            // dw[k, t] = dwᵀ[t, k]
            for (int k = 0; k < filters; k++)
            {
                var row = dw.Slice(k * cff, cff);
                for (int t = 0; t < cff; t++) row[t] = sum[t * padded + k];
            }
            partials.AsSpan(cff * padded, filters).CopyTo(db);
            for (int n = 1; n < xShape.N; n++) TensorPrimitives.Add(db, partials.AsSpan(n * perImage + cff * padded, filters), db);
        }
        finally
        {
            job.ReturnSlots(pool);
            pool.Return(partials);
            job.Clear();
            Cache<FiltersWeightsJob<T>>.Return(job);
        }
    }

    /// <summary>One image of a by-filters backward-weights call: its bands in order, into its own partial dwᵀ and db.</summary>
    private sealed unsafe class FiltersWeightsJob<T> : ImageWeightsJob<T>, IParallelWork where T : unmanaged, IFloatingPointIeee754<T>
    {
        private int _padded, _vectors;

        public void Set(in Band band, Shape x, int filters, int padded, int vectors, ConvSpec spec, int outH, int outW, T[] partials, T* px, T* pdy)
        {
            SetCall(band, x, filters, spec, outH, outW, partials, px, pdy);
            (_padded, _vectors) = (padded, vectors);
        }

        public void Run(int img, int worker)
        {
            int lanes = Vector512<T>.Count, block = _vectors * lanes, tapBlock = _vectors == 1 ? WideTapBlock : WeightTapBlock;
            int hw = OutH * OutW, cff = Cff, padded = _padded;
            ReadOnlySpan<T> xn = ImageX(img), dyn = ImageDy(img);
            var xp = Slot(worker).AsSpan(0, Band.Elements);
            var dyt = Slot(worker).AsSpan(Band.Elements, padded * Band.Rows * OutW);
            var partial = Partials.AsSpan(img * (cff * padded + Filters), cff * padded + Filters);
            var dwt = partial[..(cff * padded)];
            var db = partial[(cff * padded)..];
            for (int k = 0; k < Filters; k++) db[k] = TensorPrimitives.Sum(dyn.Slice(k * hw, hw));
            dwt.Clear();
            var taps = TapOffsets;
            int rowStride = Spec!.StrideH * Band.Phases * Band.Mp;
            for (int oh0 = 0; oh0 < OutH; oh0 += Band.Rows)
            {
                int rows = Math.Min(Band.Rows, OutH - oh0), outputs = rows * OutW;
                Band.Fill(xn, X.C, X.H, X.W, Spec, oh0, xp);
                // dyt[kb, p, j] = dy[kb·3V + j, oh0 + p / W', p mod W'] for the band's outputs p, zero past K.
                for (int kb = 0; kb < padded / block; kb++)
                {
                    var dst = dyt.Slice(kb * outputs * block, outputs * block);
                    Transpose(Dy + (long)img * Filters * hw, hw, Filters, kb * block, block, oh0 * OutW, outputs, dst);
                    for (int t0 = 0; t0 < cff; t0 += tapBlock)
                    {
                        if (_vectors != 1)
                        {
                            TapBlock(xp, taps, t0, rowStride, rows, OutW, dst, dwt, padded, kb * block);
                            continue;
                        }
                        // One vector: 24 taps a pass while 24 remain, then 8 (cifar's 75 taps: 24, 24, 24, 3 of 8 — against
                        // a fourth pass of 24, 8–14% faster over the call, interleaved).
                        if (t0 + WideTapBlock <= cff) WideTapBlock1(xp, taps, t0, rowStride, rows, OutW, dst, dwt, padded);
                        else for (; t0 < cff; t0 += 8) TapBlock8x1(xp, taps, t0, rowStride, rows, OutW, dst, dwt, padded);
                    }
                }
            }
        }
    }

    // dst[p, j] = dy[k0 + j, start + p] for j < block, p < outputs (dy one image's [K × H'·W'], hw = H'·W'), zero for
    // k0 + j ≥ K: a vector of filters a gather where all exist.
    private static unsafe void Transpose<T>(T* dy, int hw, int filters, int k0, int block, int start, int outputs, Span<T> dst)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int lanes = Vector256<T>.Count;
        ref T d = ref MemoryMarshal.GetReference(dst);
        for (int j0 = 0; j0 < block; j0 += lanes)
        {
            T* src = dy + (long)(k0 + j0) * hw + start;
            if (Avx2.IsSupported && k0 + j0 + lanes <= filters)
            {
                if (typeof(T) == typeof(float))
                {
                    int p = 0;
                    for (; p + 8 <= outputs; p += 8) Transpose8x8((float*)src + p, hw, ref Unsafe.As<T, float>(ref Unsafe.Add(ref d, p * block + j0)), block);
                    var rows = Vector256.Create(0, hw, 2 * hw, 3 * hw, 4 * hw, 5 * hw, 6 * hw, 7 * hw);
                    for (; p < outputs; p++)
                        Avx2.GatherVector256((float*)src + p, rows, 4).As<float, T>().StoreUnsafe(ref d, (nuint)(p * block + j0));
                }
                else
                {
                    var rows = Vector128.Create(0, hw, 2 * hw, 3 * hw);
                    for (int p = 0; p < outputs; p++)
                        Avx2.GatherVector256((double*)src + p, rows, 8).As<double, T>().StoreUnsafe(ref d, (nuint)(p * block + j0));
                }
                continue;
            }
            for (int j = j0; j < j0 + lanes; j++)
            {
                bool exists = k0 + j < filters;
                for (int p = 0; p < outputs; p++) Unsafe.Add(ref d, p * block + j) = exists ? src[(j - j0) * (long)hw + p] : T.Zero;
            }
        }
    }

    // dst[i·stride + j] = src[j·ld + i] for i, j < 8: eight rows loaded, transposed in registers (unpack, shuffle, swap of
    // 128-bit halves), eight columns stored.
    private static unsafe void Transpose8x8(float* src, int ld, ref float dst, int stride)
    {
        var r0 = Vector256.Load(src); var r1 = Vector256.Load(src + ld); var r2 = Vector256.Load(src + 2 * ld); var r3 = Vector256.Load(src + 3 * ld);
        var r4 = Vector256.Load(src + 4 * ld); var r5 = Vector256.Load(src + 5 * ld); var r6 = Vector256.Load(src + 6 * ld); var r7 = Vector256.Load(src + 7 * ld);
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1); var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5); var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE); var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE); var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        nuint s = (nuint)stride;
        Avx.Permute2x128(u0, u4, 0x20).StoreUnsafe(ref dst); Avx.Permute2x128(u1, u5, 0x20).StoreUnsafe(ref dst, s);
        Avx.Permute2x128(u2, u6, 0x20).StoreUnsafe(ref dst, 2 * s); Avx.Permute2x128(u3, u7, 0x20).StoreUnsafe(ref dst, 3 * s);
        Avx.Permute2x128(u0, u4, 0x31).StoreUnsafe(ref dst, 4 * s); Avx.Permute2x128(u1, u5, 0x31).StoreUnsafe(ref dst, 5 * s);
        Avx.Permute2x128(u2, u6, 0x31).StoreUnsafe(ref dst, 6 * s); Avx.Permute2x128(u3, u7, 0x31).StoreUnsafe(ref dst, 7 * s);
    }

    // dwᵀ[t0 + i, k0 + j] += Σ_p xp[taps[t0 + i] + Input(p)] · dyt[p, j] for the band's outputs p in row order, 8 taps
    // (a block past CFF repeats the last tap and stores it once) × 3 vectors of filters.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TapBlock<T>(ReadOnlySpan<T> xp, ReadOnlySpan<int> taps, int t0, int rowStride, int rows, int outW,
        ReadOnlySpan<T> dyt, Span<T> dwt, int padded, int k0) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int lanes = Vector512<T>.Count, cff = taps.Length, last = cff - 1;
        int o0 = taps[t0], o1 = taps[Math.Min(t0 + 1, last)], o2 = taps[Math.Min(t0 + 2, last)], o3 = taps[Math.Min(t0 + 3, last)];
        int o4 = taps[Math.Min(t0 + 4, last)], o5 = taps[Math.Min(t0 + 5, last)], o6 = taps[Math.Min(t0 + 6, last)], o7 = taps[Math.Min(t0 + 7, last)];
        Vector512<T> a00 = default, a01 = default, a02 = default, a10 = default, a11 = default, a12 = default, a20 = default, a21 = default;
        Vector512<T> a22 = default, a30 = default, a31 = default, a32 = default, a40 = default, a41 = default, a42 = default, a50 = default;
        Vector512<T> a51 = default, a52 = default, a60 = default, a61 = default, a62 = default, a70 = default, a71 = default, a72 = default;
        ref T xRef = ref MemoryMarshal.GetReference(xp);
        ref T d = ref MemoryMarshal.GetReference(dyt);
        for (int r = 0; r < rows; r++)
        {
            ref T xr = ref Unsafe.Add(ref xRef, r * rowStride);
            for (int ow = 0; ow < outW; ow++, d = ref Unsafe.Add(ref d, 3 * lanes))
            {
                ref T xq = ref Unsafe.Add(ref xr, ow);
                var d0 = Vector512.LoadUnsafe(ref d);
                var d1 = Vector512.LoadUnsafe(ref d, (nuint)lanes);
                var d2 = Vector512.LoadUnsafe(ref d, (nuint)(2 * lanes));
                var x = Vector512.Create(Unsafe.Add(ref xq, o0)); a00 = Fma(x, d0, a00); a01 = Fma(x, d1, a01); a02 = Fma(x, d2, a02);
                x = Vector512.Create(Unsafe.Add(ref xq, o1)); a10 = Fma(x, d0, a10); a11 = Fma(x, d1, a11); a12 = Fma(x, d2, a12);
                x = Vector512.Create(Unsafe.Add(ref xq, o2)); a20 = Fma(x, d0, a20); a21 = Fma(x, d1, a21); a22 = Fma(x, d2, a22);
                x = Vector512.Create(Unsafe.Add(ref xq, o3)); a30 = Fma(x, d0, a30); a31 = Fma(x, d1, a31); a32 = Fma(x, d2, a32);
                x = Vector512.Create(Unsafe.Add(ref xq, o4)); a40 = Fma(x, d0, a40); a41 = Fma(x, d1, a41); a42 = Fma(x, d2, a42);
                x = Vector512.Create(Unsafe.Add(ref xq, o5)); a50 = Fma(x, d0, a50); a51 = Fma(x, d1, a51); a52 = Fma(x, d2, a52);
                x = Vector512.Create(Unsafe.Add(ref xq, o6)); a60 = Fma(x, d0, a60); a61 = Fma(x, d1, a61); a62 = Fma(x, d2, a62);
                x = Vector512.Create(Unsafe.Add(ref xq, o7)); a70 = Fma(x, d0, a70); a71 = Fma(x, d1, a71); a72 = Fma(x, d2, a72);
            }
        }
        ref T w = ref MemoryMarshal.GetReference(dwt);
        Add(ref w, t0, cff, padded, k0, lanes, a00, a01, a02); Add(ref w, t0 + 1, cff, padded, k0, lanes, a10, a11, a12);
        Add(ref w, t0 + 2, cff, padded, k0, lanes, a20, a21, a22); Add(ref w, t0 + 3, cff, padded, k0, lanes, a30, a31, a32);
        Add(ref w, t0 + 4, cff, padded, k0, lanes, a40, a41, a42); Add(ref w, t0 + 5, cff, padded, k0, lanes, a50, a51, a52);
        Add(ref w, t0 + 6, cff, padded, k0, lanes, a60, a61, a62); Add(ref w, t0 + 7, cff, padded, k0, lanes, a70, a71, a72);

        static void Add(ref T w, int t, int cff, int padded, int k0, int lanes, Vector512<T> a0, Vector512<T> a1, Vector512<T> a2)
        {
            if (t >= cff) return;
            nuint at = (nuint)(t * padded + k0);
            (Vector512.LoadUnsafe(ref w, at) + a0).StoreUnsafe(ref w, at);
            (Vector512.LoadUnsafe(ref w, at + (nuint)lanes) + a1).StoreUnsafe(ref w, at + (nuint)lanes);
            (Vector512.LoadUnsafe(ref w, at + (nuint)(2 * lanes)) + a2).StoreUnsafe(ref w, at + (nuint)(2 * lanes));
        }
    }

    // dwᵀ[t0 + i, j] += Σ_p xp[taps[t0 + i] + Input(p)] · dyt[p, j] for one vector of filters and 24 taps (a block past
    // CFF repeats the last tap and stores it once): 24 broadcasts and one load of dy for 24 FMAs an output.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WideTapBlock1<T>(ReadOnlySpan<T> xp, ReadOnlySpan<int> taps, int t0, int rowStride, int rows, int outW,
        ReadOnlySpan<T> dyt, Span<T> dwt, int padded) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int lanes = Vector512<T>.Count, cff = taps.Length;
        Span<int> o = stackalloc int[WideTapBlock];
        for (int i = 0; i < WideTapBlock; i++) o[i] = taps[Math.Min(t0 + i, cff - 1)];
        ref int ro = ref MemoryMarshal.GetReference(o);
        Vector512<T> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        Vector512<T> a8 = default, a9 = default, a10 = default, a11 = default, a12 = default, a13 = default, a14 = default, a15 = default;
        Vector512<T> a16 = default, a17 = default, a18 = default, a19 = default, a20 = default, a21 = default, a22 = default, a23 = default;
        ref T xRef = ref MemoryMarshal.GetReference(xp);
        ref T d = ref MemoryMarshal.GetReference(dyt);
        for (int r = 0; r < rows; r++)
        {
            ref T xr = ref Unsafe.Add(ref xRef, r * rowStride);
            for (int ow = 0; ow < outW; ow++, d = ref Unsafe.Add(ref d, lanes))
            {
                ref T xq = ref Unsafe.Add(ref xr, ow);
                var g = Vector512.LoadUnsafe(ref d);
                a0 = Fma(Vector512.Create(Unsafe.Add(ref xq, ro)), g, a0);
                a1 = Fma(Vector512.Create(Unsafe.Add(ref xq, Unsafe.Add(ref ro, 1))), g, a1);
                a2 = Fma(Vector512.Create(Unsafe.Add(ref xq, Unsafe.Add(ref ro, 2))), g, a2);
                a3 = Fma(Vector512.Create(Unsafe.Add(ref xq, Unsafe.Add(ref ro, 3))), g, a3);
                a4 = Fma(Vector512.Create(Unsafe.Add(ref xq, Unsafe.Add(ref ro, 4))), g, a4);
                a5 = Fma(Vector512.Create(Unsafe.Add(ref xq, Unsafe.Add(ref ro, 5))), g, a5);
                a6 = Fma(Vector512.Create(Unsafe.Add(ref xq, Unsafe.Add(ref ro, 6))), g, a6);
                a7 = Fma(Vector512.Create(Unsafe.Add(ref xq, Unsafe.Add(ref ro, 7))), g, a7);
                a8 = Fma(Vector512.Create(Unsafe.Add(ref xq, Unsafe.Add(ref ro, 8))), g, a8);
                a9 = Fma(Vector512.Create(Unsafe.Add(ref xq, Unsafe.Add(ref ro, 9))), g, a9);
                a10 = Fma(Vector512.Create(Unsafe.Add(ref xq, Unsafe.Add(ref ro, 10))), g, a10);
                a11 = Fma(Vector512.Create(Unsafe.Add(ref xq, Unsafe.Add(ref ro, 11))), g, a11);
                a12 = Fma(Vector512.Create(Unsafe.Add(ref xq, Unsafe.Add(ref ro, 12))), g, a12);
                a13 = Fma(Vector512.Create(Unsafe.Add(ref xq, Unsafe.Add(ref ro, 13))), g, a13);
                a14 = Fma(Vector512.Create(Unsafe.Add(ref xq, Unsafe.Add(ref ro, 14))), g, a14);
                a15 = Fma(Vector512.Create(Unsafe.Add(ref xq, Unsafe.Add(ref ro, 15))), g, a15);
                a16 = Fma(Vector512.Create(Unsafe.Add(ref xq, Unsafe.Add(ref ro, 16))), g, a16);
                a17 = Fma(Vector512.Create(Unsafe.Add(ref xq, Unsafe.Add(ref ro, 17))), g, a17);
                a18 = Fma(Vector512.Create(Unsafe.Add(ref xq, Unsafe.Add(ref ro, 18))), g, a18);
                a19 = Fma(Vector512.Create(Unsafe.Add(ref xq, Unsafe.Add(ref ro, 19))), g, a19);
                a20 = Fma(Vector512.Create(Unsafe.Add(ref xq, Unsafe.Add(ref ro, 20))), g, a20);
                a21 = Fma(Vector512.Create(Unsafe.Add(ref xq, Unsafe.Add(ref ro, 21))), g, a21);
                a22 = Fma(Vector512.Create(Unsafe.Add(ref xq, Unsafe.Add(ref ro, 22))), g, a22);
                a23 = Fma(Vector512.Create(Unsafe.Add(ref xq, Unsafe.Add(ref ro, 23))), g, a23);
            }
        }
        ref T w = ref MemoryMarshal.GetReference(dwt);
        AddTap(ref w, t0, cff, padded, a0); AddTap(ref w, t0 + 1, cff, padded, a1); AddTap(ref w, t0 + 2, cff, padded, a2);
        AddTap(ref w, t0 + 3, cff, padded, a3); AddTap(ref w, t0 + 4, cff, padded, a4); AddTap(ref w, t0 + 5, cff, padded, a5);
        AddTap(ref w, t0 + 6, cff, padded, a6); AddTap(ref w, t0 + 7, cff, padded, a7); AddTap(ref w, t0 + 8, cff, padded, a8);
        AddTap(ref w, t0 + 9, cff, padded, a9); AddTap(ref w, t0 + 10, cff, padded, a10); AddTap(ref w, t0 + 11, cff, padded, a11);
        AddTap(ref w, t0 + 12, cff, padded, a12); AddTap(ref w, t0 + 13, cff, padded, a13); AddTap(ref w, t0 + 14, cff, padded, a14);
        AddTap(ref w, t0 + 15, cff, padded, a15); AddTap(ref w, t0 + 16, cff, padded, a16); AddTap(ref w, t0 + 17, cff, padded, a17);
        AddTap(ref w, t0 + 18, cff, padded, a18); AddTap(ref w, t0 + 19, cff, padded, a19); AddTap(ref w, t0 + 20, cff, padded, a20);
        AddTap(ref w, t0 + 21, cff, padded, a21); AddTap(ref w, t0 + 22, cff, padded, a22); AddTap(ref w, t0 + 23, cff, padded, a23);
    }

    // As WideTapBlock1 for 8 taps (a block past CFF repeats the last tap and stores it once): the tail of a wide pass.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TapBlock8x1<T>(ReadOnlySpan<T> xp, ReadOnlySpan<int> taps, int t0, int rowStride, int rows, int outW,
        ReadOnlySpan<T> dyt, Span<T> dwt, int padded) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int lanes = Vector512<T>.Count, cff = taps.Length, last = cff - 1;
        int o0 = taps[t0], o1 = taps[Math.Min(t0 + 1, last)], o2 = taps[Math.Min(t0 + 2, last)], o3 = taps[Math.Min(t0 + 3, last)];
        int o4 = taps[Math.Min(t0 + 4, last)], o5 = taps[Math.Min(t0 + 5, last)], o6 = taps[Math.Min(t0 + 6, last)], o7 = taps[Math.Min(t0 + 7, last)];
        Vector512<T> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        ref T xRef = ref MemoryMarshal.GetReference(xp);
        ref T d = ref MemoryMarshal.GetReference(dyt);
        for (int r = 0; r < rows; r++)
        {
            ref T xr = ref Unsafe.Add(ref xRef, r * rowStride);
            for (int ow = 0; ow < outW; ow++, d = ref Unsafe.Add(ref d, lanes))
            {
                ref T xq = ref Unsafe.Add(ref xr, ow);
                var g = Vector512.LoadUnsafe(ref d);
                a0 = Fma(Vector512.Create(Unsafe.Add(ref xq, o0)), g, a0); a1 = Fma(Vector512.Create(Unsafe.Add(ref xq, o1)), g, a1);
                a2 = Fma(Vector512.Create(Unsafe.Add(ref xq, o2)), g, a2); a3 = Fma(Vector512.Create(Unsafe.Add(ref xq, o3)), g, a3);
                a4 = Fma(Vector512.Create(Unsafe.Add(ref xq, o4)), g, a4); a5 = Fma(Vector512.Create(Unsafe.Add(ref xq, o5)), g, a5);
                a6 = Fma(Vector512.Create(Unsafe.Add(ref xq, o6)), g, a6); a7 = Fma(Vector512.Create(Unsafe.Add(ref xq, o7)), g, a7);
            }
        }
        ref T w = ref MemoryMarshal.GetReference(dwt);
        AddTap(ref w, t0, cff, padded, a0); AddTap(ref w, t0 + 1, cff, padded, a1); AddTap(ref w, t0 + 2, cff, padded, a2);
        AddTap(ref w, t0 + 3, cff, padded, a3); AddTap(ref w, t0 + 4, cff, padded, a4); AddTap(ref w, t0 + 5, cff, padded, a5);
        AddTap(ref w, t0 + 6, cff, padded, a6); AddTap(ref w, t0 + 7, cff, padded, a7);
    }

    // dwᵀ[t, 0 … V) += a, for a tap inside CFF.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddTap<T>(ref T w, int t, int cff, int padded, Vector512<T> a) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (t >= cff) return;
        nuint at = (nuint)(t * padded);
        (Vector512.LoadUnsafe(ref w, at) + a).StoreUnsafe(ref w, at);
    }
}
