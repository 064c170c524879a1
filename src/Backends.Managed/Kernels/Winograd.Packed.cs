using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Lockstep.Backends.Managed.Kernels.VectorFma;

namespace Lockstep.Backends.Managed.Kernels;

// The products of a single band on packed weights. Where all the batch's tiles fit one band (VGG16's 14×14 and 28×28
// and AlexNet's 13×13 layers at the batches of the sweeps) the products M_ξ = U_ξ · V_ξ are short — 512 × 512 × 98
// tiles for VGG16's 14×14×512 at batch 2 — and OpenBLAS, which packs U_ξ anew in every call and reads it from beyond the
// core's caches, ran them at 140–160 GFLOP/s on two threads, 60–70% of peak. Here the forward's weight transform writes
// U already packed — for each block of PackRows filters, channel by channel, the block's U_ξ[k, c] side by side — so
// that a kernel call reads one contiguous panel and keeps a PackRows × PackColumns block of M_ξ in 28 vector registers,
// V_ξ read as the input transform left it: 195 against OpenBLAS 0.3.29's 156 GFLOP/s at 512 × 512 × 98, measured alone
// (2 threads, one product a worker, float32). The input gradient's products need U_ξᵀ packed by channels: they take
// the forward's transform (kept beside the weights) and repack it panel by panel, each just before its kernel calls,
// which prefetch the next panel's blocks (a pass over all 16 positions through memory first cost the input gradient
// as much as the kernel saved; a position at a time, unprefetched, its products ran at 169–176 GFLOP/s, now 180–183).
// Interleaved call by call in one process (2 threads, float32, medians of 21, two processes): VGG16's 14×14×512 at
// batch 2 forward 6.5 against 7.6 ms and 8.7 against 9.8, input gradient 5.9 against 6.2 and 6.1 against 6.4 (a
// position at a time; 5.7–5.8 prefetched); its 28×28×512 forward 21.5 against 22.2 and 22.8, input gradient 21.3–21.9
// against 21.1–21.6; AlexNet's 13×13 layers at batch 8 level (384 → 384 forward 13.5–13.6 against 13.9).
//
// Each element of M is one sum over the depth in order, one fused multiply-add a step, so its bits depend on the
// operands alone: the same on any number of threads. Whether a call packs depends on the geometry and on AVX-512.
internal static partial class Winograd
{
    /// <summary>Rows of U in a packed block: two Vector512s (32 floats, 16 doubles).</summary>
    internal static int PackRows<T>() where T : unmanaged => 2 * Vector512<T>.Count;

    /// <summary>Columns (tiles) of M a kernel call computes: 2 × 14 accumulators, 28 of the 32 vector registers.</summary>
    private const int PackColumns = 14;

    /// <summary>
    /// Whether a forward's products run on packed weights: a 3×3 layer whose tiles fit one band, with AVX-512, and the
    /// filters (the products' rows) whole packed blocks.
    /// </summary>
    internal static bool PacksForward<T>(int r, int n, int channels, int filters, int outH, int outW) where T : unmanaged =>
        Vector512.IsHardwareAccelerated && r == 3 && new Plan(r, n, channels, filters, outH, outW).Bands == 1 && filters % PackRows<T>() == 0;

    /// <summary>
    /// Whether an input gradient's products do (outH × outW: dy's sizes): where the forward's do — they read its
    /// transform — and the channels, their rows, are whole packed blocks too.
    /// </summary>
    internal static bool PacksInputGradient<T>(int r, int n, int channels, int filters, int outH, int outW) where T : unmanaged =>
        PacksForward<T>(r, n, channels, filters, outH, outW) && channels % PackRows<T>() == 0;

    /// <summary>
    /// Whether a phased weight gradient's products run packed (<see cref="PackedProductTransposed{T}"/>,
    /// <see cref="PackedWeightBlock{T}"/>): with AVX-512, channels whole blocks.
    /// </summary>
    internal static bool PacksWeights<T>(int channels) where T : unmanaged =>
        Vector512.IsHardwareAccelerated && channels % PackRows<T>() == 0;

    /// <summary>
    /// Whether a 5×5 input gradient's products run on packed weights: with AVX-512, the channels (the products' rows)
    /// whole packed blocks; the weight transform then writes U' packed by channels (<see cref="TransformRotatedByChannels{T}"/>).
    /// A band of one tile row is then PackColumns tiles wide on AlexNet's conv2, 96 × 14 × 256 a product, one kernel
    /// call a block of channels. Interleaved call by call (AlexNet's conv2 at batch 8, 2 threads, float32, medians of
    /// 31, two processes): the input gradient 20.5 and 20.3 ms against OpenBLAS's 22.7 and 23.5, its products 12.9 and
    /// 12.8 against 13.3 and 13.5 (the rest of the difference is the transform's gather, below).
    /// </summary>
    internal static bool PacksRotated<T>(int r, int channels) where T : unmanaged =>
        Vector512.IsHardwareAccelerated && r == 5 && channels % PackRows<T>() == 0;

    // M [rows × cols] (rows ldm apart) = A · B, A packed ([rows / PackRows][depth][PackRows]), B [depth × cols] (rows ldb
    // apart): for each block of A's rows, its panel is read once per PackColumns columns of B, and stays in the core's
    // caches between them. A last, narrower block of columns is copied, padded with zeros. With byFilters, A is Aᵀ
    // packed the other way ([depth / PackRows][rows][PackRows]: the forward's transform, for the input gradient), and
    // each panel is made from it just before its kernel calls, by PackRows × PackRows transposes, while those calls
    // prefetch the next panel's blocks into L2 (the panel's blocks lie PackRows·rows apart, which no hardware
    // prefetcher follows). The kernel reads without bounds checks, so the sizes are checked here.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static unsafe void PackedProduct<T>(ReadOnlySpan<T> a, int rows, int depth, ReadOnlySpan<T> b, int ldb, int cols, Span<T> m, int ldm,
        bool byFilters = false) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int pack = PackRows<T>(), whole = cols / PackColumns * PackColumns, rest = cols - whole;
        if (rows % pack != 0 || depth < 1 || cols < 1 || ldb < cols || ldm < cols || a.Length < (long)rows * depth
            || b.Length < (long)(depth - 1) * ldb + cols || m.Length < (long)(rows - 1) * ldm + cols || (byFilters && depth % pack != 0))
        {
            throw new ArgumentException($"packed product: {rows} × {cols} × {depth} (rows{(byFilters ? " and depth" : "")} a multiple of {pack}) " +
                $"with ldb {ldb}, ldm {ldm} does not fit A {a.Length}, B {b.Length}, M {m.Length} elements");
        }
        var scratch = PackScratch<T>.Get(pack * PackColumns + (rest > 0 ? depth * PackColumns : 0) + (byFilters ? pack * depth : 0));
        var block = scratch.AsSpan(0, pack * PackColumns);
        var tail = scratch.AsSpan(block.Length, rest > 0 ? depth * PackColumns : 0);
        var made = scratch.AsSpan(block.Length + tail.Length, byFilters ? pack * depth : 0);
        if (rest > 0)
        {
            for (int d = 0; d < depth; d++)
            {
                b.Slice(d * ldb + whole, rest).CopyTo(tail.Slice(d * PackColumns));
                tail.Slice(d * PackColumns + rest, PackColumns - rest).Clear();
            }
        }
        // A panel's blocks (byFilters): depth / pack of them, PackRows² elements each, rows·pack apart.
        int lineShift = BitOperations.Log2((uint)(pack * pack * Unsafe.SizeOf<T>() / 64)), calls = (cols + PackColumns - 1) / PackColumns;
        int lines = (depth / pack) << lineShift, perCall = (lines + calls - 1) / calls;
        fixed (T* pa = a)
        {
            for (int r0 = 0; r0 < rows; r0 += pack)
            {
                var panel = a.Slice(r0 * depth, byFilters ? 0 : pack * depth);
                var next = default(Prefetch);
                if (byFilters)
                {
                    for (int kb = 0; kb < depth / pack; kb++)
                        TransposeRows(a.Slice((kb * rows + r0) * pack, pack * pack), pack, pack, pack, made.Slice(kb * pack * pack, pack * pack), pack);
                    panel = made;
                    if (r0 + pack < rows) next = new Prefetch((byte*)(pa + (r0 + pack) * pack), (nint)rows * pack * Unsafe.SizeOf<T>(), lineShift);
                }
                // Nothing to prefetch without a next panel (the forward's A is read in place, the last panel has none).
                int prefetched = next.Start == null ? 0 : lines;
                for (int c0 = 0, call = 0; c0 < cols; c0 += PackColumns, call++)
                {
                    bool full = c0 < whole;
                    int first = Math.Min(prefetched, call * perCall);
                    PackedKernel(panel, pack, full ? b[c0..] : tail, full ? ldb : PackColumns, depth, block, pack, false, next, first,
                        Math.Min(prefetched, first + perCall));
                    int width = full ? PackColumns : rest;
                    for (int i = 0; i < pack; i++)
                    {
                        var row = m.Slice((r0 + i) * ldm + c0, width);
                        for (int j = 0; j < width; j++) row[j] = block[j * pack + i];
                    }
                }
            }
        }
    }

    /// <summary>
    /// Lines to prefetch: line i of a set of blocks at Start + (i >> LineShift)·Block + (i mod 2^LineShift)·64 bytes;
    /// Near: into L1, one a kernel step (a block of M about to be added to), else into L2, one every other step.
    /// </summary>
    private readonly unsafe struct Prefetch(byte* start, nint block, int lineShift, bool near = false)
    {
        public byte* Start { get; } = start;
        public nint Block { get; } = block;
        public int LineShift { get; } = lineShift;
        public bool Near { get; } = near;
    }

    // The weight gradient's products M_ξ = D_ξ · V_ξᵀ, D_ξ [K × depth] (dy's transform) and V_ξ [C × depth], whose depth,
    // the batch's tiles, is short: 98 for VGG16's 14×14 layers at batch 2, so that each element of M is 196 flops, and
    // storing M — to memory, to be read back by dw's transform — cost a fifth of the kernel's time (one thread,
    // 512 × 512 × 98: 108 GFLOP/s into a block kept in L1, 85 storing each block into M). Both operands are packed
    // first by PackWeightOperands; then either a position's M whole, block by block (PackedProductTransposed), or,
    // where the depth is short (FusesWeights), M is never stored whole: every position's operands are packed (a
    // position an item) and an item, a block of channels by a few blocks of filters, runs all 16 positions' kernel calls
    // (PackedWeightBlock) into blocks kept in the worker's caches and transforms them into dw at once
    // (Winograd.PhasedWeights). Interleaved in one process (2 threads, float32, medians of 31–41), VGG16's 14×14×512
    // weight gradient: at batch 2 (98 tiles) 7.8–8.5 against 9.0–9.5 ms, at batch 3 (147) 11.6–11.9 against 12.5–13.1;
    // at batch 4 (196) now faster, now slower; at 28×28 and batch 2 (392 tiles) slower, 25.2–26.3 against 23.7–24.1:
    // there the operands of all 16 positions, 28 MB, are read from memory again for every block of channels.

    /// <summary>
    /// Whether a phased weight gradient's products run fused with dw's transform (see above): packed, and at most
    /// <see cref="FusedWeightTiles"/> tiles deep.
    /// </summary>
    internal static bool FusesWeights<T>(int channels, int tiles) where T : unmanaged => PacksWeights<T>(channels) && tiles <= FusedWeightTiles;

    /// <summary>The deepest product (tiles) that <see cref="FusesWeights{T}"/> fuses: 98 and 147 measured faster, 196 either way, 392 slower.</summary>
    internal const int FusedWeightTiles = 160;

    /// <summary>Blocks of <see cref="PackColumns"/> filters the packed weight gradient's D_ξ holds, the last one padded with zeros.</summary>
    internal static int FilterBlocks(int filters) => (filters + PackColumns - 1) / PackColumns;

    // D's packed blocks are whole Vector256s of filters wide (16), the slots past PackColumns never read.
    private static int FilterBlockWidth<T>() where T : unmanaged => (PackColumns + Vector256<T>.Count - 1) / Vector256<T>.Count * Vector256<T>.Count;

    /// <summary>Elements of one position's packed operands (<see cref="PackWeightOperands{T}"/>): V's, then D's.</summary>
    internal static int PackedWeightOperandsElements<T>(int filters, int channels, int depth) where T : unmanaged =>
        checked(channels * depth + FilterBlocks(filters) * FilterBlockWidth<T>() * depth);

    // One position's operands into `packed`, each read once, by vector transposes: V by blocks of PackRows channels
    // ([C / PackRows][depth][PackRows]), then D by blocks of PackColumns filters ([FilterBlocks][depth][16]; a last block
    // short of two vectors of filters by element, padded with zeros). D and V have rows ldd and ldv apart.
    internal static void PackWeightOperands<T>(ReadOnlySpan<T> d, int filters, int ldd, ReadOnlySpan<T> v, int channels, int ldv, int depth,
        Span<T> packed) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int pack = PackRows<T>(), width = FilterBlockWidth<T>();
        if (channels % pack != 0 || filters < 1 || depth < 1 || ldd < depth || ldv < depth || d.Length < (long)(filters - 1) * ldd + depth
            || v.Length < (long)(channels - 1) * ldv + depth || packed.Length < PackedWeightOperandsElements<T>(filters, channels, depth))
        {
            throw new ArgumentException($"packed weight operands: {filters} filters × {channels} channels (a multiple of {pack}) × {depth} " +
                $"with ldd {ldd}, ldv {ldv} does not fit D {d.Length}, V {v.Length}, packed {packed.Length} elements");
        }
        for (int c0 = 0; c0 < channels; c0 += pack) TransposeRows(v[(c0 * ldv)..], ldv, pack, depth, packed.Slice(c0 * depth, pack * depth), pack);
        var b = packed.Slice(channels * depth, FilterBlocks(filters) * width * depth);
        for (int kb = 0; kb < FilterBlocks(filters); kb++)
        {
            int k0 = kb * PackColumns;
            var to = b.Slice(kb * width * depth, width * depth);
            if (k0 + width <= filters)
            {
                TransposeRows(d[(k0 * ldd)..], ldd, width, depth, to, width);
                continue;
            }
            to.Clear();
            for (int k = k0; k < Math.Min(filters, k0 + PackColumns); k++)
            for (int t = 0; t < depth; t++) to[t * width + k - k0] = d[k * ldd + t];
        }
    }

    // M [K × C] (rows ldm apart) = D · Vᵀ, one position whole: its operands packed into the worker's scratch, then
    // block by block, each stored a row of M at a time.
    internal static void PackedProductTransposed<T>(ReadOnlySpan<T> d, int filters, int ldd, ReadOnlySpan<T> v, int channels, int ldv, int depth,
        Span<T> m, int ldm) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (ldm < channels || m.Length < (long)(filters - 1) * ldm + channels)
            throw new ArgumentException($"packed weight product: M of {m.Length} elements, rows {ldm} apart, cannot hold {filters} × {channels}");
        int elements = PackedWeightOperandsElements<T>(filters, channels, depth), pack = PackRows<T>();
        var scratch = PackScratch<T>.Get(elements + pack * PackColumns);
        var packed = scratch.AsSpan(0, elements);
        var block = scratch.AsSpan(elements, pack * PackColumns);
        PackWeightOperands(d, filters, ldd, v, channels, ldv, depth, packed);
        for (int kb = 0; kb < FilterBlocks(filters); kb++)
        {
            int k0 = kb * PackColumns, count = Math.Min(PackColumns, filters - k0);
            for (int c0 = 0; c0 < channels; c0 += pack)
            {
                PackedWeightBlock<T>(packed, filters, channels, depth, kb, c0, block);
                for (int j = 0; j < count; j++) block.Slice(j * pack, pack).CopyTo(m.Slice((k0 + j) * ldm + c0, pack));
            }
        }
    }

    // block[j·PackRows + i] = M_ξ[kb·PackColumns + j, c0 + i] = Σ_t D_ξ[k, t] · V_ξ[c, t] in order, one fused
    // multiply-add a step, from one position's packed operands; j < PackColumns (past the filters, zeros). The kernel
    // reads without bounds checks, so the sizes are checked here.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void PackedWeightBlock<T>(ReadOnlySpan<T> packed, int filters, int channels, int depth, int kb, int c0, Span<T> block)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int pack = PackRows<T>(), width = FilterBlockWidth<T>();
        if (c0 % pack != 0 || c0 < 0 || c0 + pack > channels || kb < 0 || kb >= FilterBlocks(filters) || depth < 1
            || packed.Length < PackedWeightOperandsElements<T>(filters, channels, depth) || block.Length < pack * PackColumns)
        {
            throw new ArgumentException($"packed weight block: filter block {kb}, channels from {c0} (blocks of {pack}) do not fit " +
                $"{filters} filters × {channels} channels × {depth} in {packed.Length} packed elements and a block of {block.Length}");
        }
        PackedKernel(packed.Slice(c0 * depth, pack * depth), pack, packed.Slice(channels * depth + kb * width * depth, width * depth), width, depth,
            block, pack, false, default, 0, 0);
    }

    // target[t·targetStride + i] = source[i·sourceStride + t] for rows i < rows (a multiple of a Vector256's lanes) and
    // t < depth: whole vectors of t by 8 × 8 (doubles 4 × 4) transposes, the rest element by element.
    private static void TransposeRows<T>(ReadOnlySpan<T> source, int sourceStride, int rows, int depth, Span<T> target, int targetStride)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int side = Vector256<T>.Count, whole = depth / side * side;
        for (int i = 0; i < rows; i += side)
        for (int t = 0; t < whole; t += side)
        {
            TransposeBlock(ref Unsafe.AsRef(in source[i * sourceStride + t]), sourceStride, ref target[t * targetStride + i], targetStride);
        }
        for (int i = 0; i < rows; i++)
        for (int t = whole; t < depth; t++) target[t * targetStride + i] = source[i * sourceStride + t];
    }

    // block[j·ldo + i] (+)= Σ_d panel[d·ldp + i] · b[d·ldb + j], i < PackRows, j < PackColumns, d in order from zero;
    // with `accumulate` each sum is then added to the block's value: a weight gradient's sum of band sums (one chain
    // continued over a slot's tiles, 784 on AlexNet's conv2 at batch 8, left a 27×27×64 float32 dw 2.1e-5 off the
    // definition; the sums of 56-tile sums are 0.72·ε·√K off float64 on conv2, OpenBLAS's band products 1.15).
    // Lines [line, end) of `prefetch` are prefetched on the way: into L2 one every other step, or (Near) into L1 one a step.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void PackedKernel<T>(ReadOnlySpan<T> panel, int ldp, ReadOnlySpan<T> b, int ldb, int depth, Span<T> block, int ldo,
        bool accumulate, Prefetch prefetch, int line, int end) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int mask = (1 << prefetch.LineShift) - 1, spacing = prefetch.Near ? 0 : 1;
        int lanes = Vector512<T>.Count;
        ref T ap = ref MemoryMarshal.GetReference(panel);
        ref T bp = ref MemoryMarshal.GetReference(b);
        ref T o = ref MemoryMarshal.GetReference(block);
        int s = ldo;
        Vector512<T> a00 = default, a01 = default, a02 = default, a03 = default, a04 = default, a05 = default, a06 = default;
        Vector512<T> a07 = default, a08 = default, a09 = default, a0a = default, a0b = default, a0c = default, a0d = default;
        Vector512<T> a10 = default, a11 = default, a12 = default, a13 = default, a14 = default, a15 = default, a16 = default;
        Vector512<T> a17 = default, a18 = default, a19 = default, a1a = default, a1b = default, a1c = default, a1d = default;
        for (int d = 0; d < depth; d++, ap = ref Unsafe.Add(ref ap, ldp), bp = ref Unsafe.Add(ref bp, ldb))
        {
            if (line < end && (d & spacing) == 0)
            {
                byte* at = prefetch.Start + (line >> prefetch.LineShift) * prefetch.Block + ((line & mask) << 6);
                if (prefetch.Near) Sse.Prefetch0(at);
                else Sse.Prefetch1(at);
                line++;
            }
            var v0 = Vector512.LoadUnsafe(ref ap);
            var v1 = Vector512.LoadUnsafe(ref ap, (nuint)lanes);
            var w = Vector512.Create(bp);
            a00 = Fma(v0, w, a00); a10 = Fma(v1, w, a10);
            w = Vector512.Create(Unsafe.Add(ref bp, 1));
            a01 = Fma(v0, w, a01); a11 = Fma(v1, w, a11);
            w = Vector512.Create(Unsafe.Add(ref bp, 2));
            a02 = Fma(v0, w, a02); a12 = Fma(v1, w, a12);
            w = Vector512.Create(Unsafe.Add(ref bp, 3));
            a03 = Fma(v0, w, a03); a13 = Fma(v1, w, a13);
            w = Vector512.Create(Unsafe.Add(ref bp, 4));
            a04 = Fma(v0, w, a04); a14 = Fma(v1, w, a14);
            w = Vector512.Create(Unsafe.Add(ref bp, 5));
            a05 = Fma(v0, w, a05); a15 = Fma(v1, w, a15);
            w = Vector512.Create(Unsafe.Add(ref bp, 6));
            a06 = Fma(v0, w, a06); a16 = Fma(v1, w, a16);
            w = Vector512.Create(Unsafe.Add(ref bp, 7));
            a07 = Fma(v0, w, a07); a17 = Fma(v1, w, a17);
            w = Vector512.Create(Unsafe.Add(ref bp, 8));
            a08 = Fma(v0, w, a08); a18 = Fma(v1, w, a18);
            w = Vector512.Create(Unsafe.Add(ref bp, 9));
            a09 = Fma(v0, w, a09); a19 = Fma(v1, w, a19);
            w = Vector512.Create(Unsafe.Add(ref bp, 10));
            a0a = Fma(v0, w, a0a); a1a = Fma(v1, w, a1a);
            w = Vector512.Create(Unsafe.Add(ref bp, 11));
            a0b = Fma(v0, w, a0b); a1b = Fma(v1, w, a1b);
            w = Vector512.Create(Unsafe.Add(ref bp, 12));
            a0c = Fma(v0, w, a0c); a1c = Fma(v1, w, a1c);
            w = Vector512.Create(Unsafe.Add(ref bp, 13));
            a0d = Fma(v0, w, a0d); a1d = Fma(v1, w, a1d);
        }
        if (accumulate)
        {
            a00 += Vector512.LoadUnsafe(ref o, 0); a10 += Vector512.LoadUnsafe(ref o, (nuint)lanes);
            a01 += Vector512.LoadUnsafe(ref o, (nuint)s); a11 += Vector512.LoadUnsafe(ref o, (nuint)(s + lanes));
            a02 += Vector512.LoadUnsafe(ref o, (nuint)(2 * s)); a12 += Vector512.LoadUnsafe(ref o, (nuint)(2 * s + lanes));
            a03 += Vector512.LoadUnsafe(ref o, (nuint)(3 * s)); a13 += Vector512.LoadUnsafe(ref o, (nuint)(3 * s + lanes));
            a04 += Vector512.LoadUnsafe(ref o, (nuint)(4 * s)); a14 += Vector512.LoadUnsafe(ref o, (nuint)(4 * s + lanes));
            a05 += Vector512.LoadUnsafe(ref o, (nuint)(5 * s)); a15 += Vector512.LoadUnsafe(ref o, (nuint)(5 * s + lanes));
            a06 += Vector512.LoadUnsafe(ref o, (nuint)(6 * s)); a16 += Vector512.LoadUnsafe(ref o, (nuint)(6 * s + lanes));
            a07 += Vector512.LoadUnsafe(ref o, (nuint)(7 * s)); a17 += Vector512.LoadUnsafe(ref o, (nuint)(7 * s + lanes));
            a08 += Vector512.LoadUnsafe(ref o, (nuint)(8 * s)); a18 += Vector512.LoadUnsafe(ref o, (nuint)(8 * s + lanes));
            a09 += Vector512.LoadUnsafe(ref o, (nuint)(9 * s)); a19 += Vector512.LoadUnsafe(ref o, (nuint)(9 * s + lanes));
            a0a += Vector512.LoadUnsafe(ref o, (nuint)(10 * s)); a1a += Vector512.LoadUnsafe(ref o, (nuint)(10 * s + lanes));
            a0b += Vector512.LoadUnsafe(ref o, (nuint)(11 * s)); a1b += Vector512.LoadUnsafe(ref o, (nuint)(11 * s + lanes));
            a0c += Vector512.LoadUnsafe(ref o, (nuint)(12 * s)); a1c += Vector512.LoadUnsafe(ref o, (nuint)(12 * s + lanes));
            a0d += Vector512.LoadUnsafe(ref o, (nuint)(13 * s)); a1d += Vector512.LoadUnsafe(ref o, (nuint)(13 * s + lanes));
        }
        a00.StoreUnsafe(ref o, 0); a10.StoreUnsafe(ref o, (nuint)lanes);
        a01.StoreUnsafe(ref o, (nuint)s); a11.StoreUnsafe(ref o, (nuint)(s + lanes));
        a02.StoreUnsafe(ref o, (nuint)(2 * s)); a12.StoreUnsafe(ref o, (nuint)(2 * s + lanes));
        a03.StoreUnsafe(ref o, (nuint)(3 * s)); a13.StoreUnsafe(ref o, (nuint)(3 * s + lanes));
        a04.StoreUnsafe(ref o, (nuint)(4 * s)); a14.StoreUnsafe(ref o, (nuint)(4 * s + lanes));
        a05.StoreUnsafe(ref o, (nuint)(5 * s)); a15.StoreUnsafe(ref o, (nuint)(5 * s + lanes));
        a06.StoreUnsafe(ref o, (nuint)(6 * s)); a16.StoreUnsafe(ref o, (nuint)(6 * s + lanes));
        a07.StoreUnsafe(ref o, (nuint)(7 * s)); a17.StoreUnsafe(ref o, (nuint)(7 * s + lanes));
        a08.StoreUnsafe(ref o, (nuint)(8 * s)); a18.StoreUnsafe(ref o, (nuint)(8 * s + lanes));
        a09.StoreUnsafe(ref o, (nuint)(9 * s)); a19.StoreUnsafe(ref o, (nuint)(9 * s + lanes));
        a0a.StoreUnsafe(ref o, (nuint)(10 * s)); a1a.StoreUnsafe(ref o, (nuint)(10 * s + lanes));
        a0b.StoreUnsafe(ref o, (nuint)(11 * s)); a1b.StoreUnsafe(ref o, (nuint)(11 * s + lanes));
        a0c.StoreUnsafe(ref o, (nuint)(12 * s)); a1c.StoreUnsafe(ref o, (nuint)(12 * s + lanes));
        a0d.StoreUnsafe(ref o, (nuint)(13 * s)); a1d.StoreUnsafe(ref o, (nuint)(13 * s + lanes));
    }

    // U_ξ packed by filters for the forward's products: for each block kb of PackRows filters and each channel c, the
    // block's U_ξ[k, c] side by side, at ξ·plane + (kb·C + c)·PackRows + k mod PackRows; blocks [kb0, kb1). Channel by
    // channel, the block's filters' taps are gathered and transformed a vector of filters at once. The gather reads
    // PackRows streams through w, C·9 elements apart, that the hardware does not follow: each is prefetched
    // WeightPrefetch channels ahead (VGG16's 14×14×512 forward at batch 2, 2 threads: 7.0 against 8.5–8.7 ms without).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void TransformWeightsByFilters<T>(ReadOnlySpan<T> weights, int filters, int channels, int kb0, int kb1, Span<T> u)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int pack = PackRows<T>(), plane = Spread<T>(filters * channels), lanes = Vector256<T>.Count;
        Span<T> taps = stackalloc T[9 * WeightBlock];
        fixed (T* pw = weights)
        {
            for (int kb = kb0; kb < kb1; kb++)
            for (int c = 0; c < channels; c++)
            {
                bool prefetch = c + WeightPrefetch < channels;
                for (int j = 0; j < pack; j++)
                {
                    int at = ((kb * pack + j) * channels + c) * 9;
                    var g = weights.Slice(at, 9);
                    for (int t = 0; t < 9; t++) taps[t * WeightBlock + j] = g[t];
                    if (prefetch) Sse.Prefetch0(pw + at + WeightPrefetch * 9);
                }
                int to = (kb * channels + c) * pack;
                for (int j = 0; j < pack; j += lanes) TransformFilters3(taps, j, u[(to + j)..], plane);
            }
        }
    }

    // U'_ξ = (G g' Gᵀ)_ξ of 5×5 filters turned 180° (g' = w[k, c] rotated), packed by blocks of channels for the input
    // gradient's products (PackedProduct, its rows the channels, its depth the filters): for each block cb of PackRows
    // channels and each filter k, the block's U'_ξ[c, k] side by side at ξ·plane + (cb·K + k)·PackRows + c mod PackRows;
    // pairs (cb, k) = (ρ / K, ρ mod K) for ρ in [pair0, pair1). A pair's PackRows kernels w[k, c] lie side by side in
    // w, so its gather reads one stream (the unpacked layout gathered across filters, C·r² elements apart: AlexNet's
    // conv2 input gradient took 2 ms longer).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformRotatedByChannels<T>(ReadOnlySpan<T> weights, int filters, int channels, int pair0, int pair1, Span<T> u)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        const int count = 25;
        int pack = PackRows<T>(), plane = Spread<T>(filters * channels), lanes = Vector256<T>.Count;
        Span<T> taps = stackalloc T[count * WeightBlock];
        for (int pair = pair0; pair < pair1; pair++)
        {
            int cb = pair / filters, k = pair % filters;
            var g = weights.Slice((k * channels + cb * pack) * count, pack * count);
            for (int j = 0; j < pack; j++)
            for (int t = 0; t < count; t++) taps[t * WeightBlock + j] = g[j * count + count - 1 - t];
            int to = (cb * filters + k) * pack;
            for (int j = 0; j < pack; j += lanes) TransformFilters5(taps, j, u[(to + j)..], plane);
        }
    }

    /// <summary>Channels ahead that <see cref="TransformWeightsByFilters{T}"/> prefetches (8 and 16 measured alike).</summary>
    private const int WeightPrefetch = 16;

    // target[a·targetStride + b] = source[b·stride + a] for a, b below a Vector256's lanes (AVX; no bounds checks).
    private static void TransposeBlock<T>(ref T source, int stride, ref T target, int targetStride) where T : unmanaged
    {
        if (typeof(T) == typeof(float)) Transpose8(ref Unsafe.As<T, float>(ref source), stride, ref Unsafe.As<T, float>(ref target), targetStride);
        else Transpose4(ref Unsafe.As<T, double>(ref source), stride, ref Unsafe.As<T, double>(ref target), targetStride);
    }

    // The 8 × 8 block of rows `stride` apart at source, transposed into the one of rows `targetStride` apart at target
    // (AVX's unpack, shuffle and lane swap).
    private static void Transpose8(ref float source, int stride, ref float target, int targetStride)
    {
        var r0 = Vector256.LoadUnsafe(ref source);
        var r1 = Vector256.LoadUnsafe(ref source, (nuint)stride);
        var r2 = Vector256.LoadUnsafe(ref source, (nuint)(2 * stride));
        var r3 = Vector256.LoadUnsafe(ref source, (nuint)(3 * stride));
        var r4 = Vector256.LoadUnsafe(ref source, (nuint)(4 * stride));
        var r5 = Vector256.LoadUnsafe(ref source, (nuint)(5 * stride));
        var r6 = Vector256.LoadUnsafe(ref source, (nuint)(6 * stride));
        var r7 = Vector256.LoadUnsafe(ref source, (nuint)(7 * stride));
        var (t0, t1, t2, t3) = (Avx.UnpackLow(r0, r1), Avx.UnpackHigh(r0, r1), Avx.UnpackLow(r2, r3), Avx.UnpackHigh(r2, r3));
        var (t4, t5, t6, t7) = (Avx.UnpackLow(r4, r5), Avx.UnpackHigh(r4, r5), Avx.UnpackLow(r6, r7), Avx.UnpackHigh(r6, r7));
        var (s0, s1, s2, s3) = (Avx.Shuffle(t0, t2, 0x44), Avx.Shuffle(t0, t2, 0xEE), Avx.Shuffle(t1, t3, 0x44), Avx.Shuffle(t1, t3, 0xEE));
        var (s4, s5, s6, s7) = (Avx.Shuffle(t4, t6, 0x44), Avx.Shuffle(t4, t6, 0xEE), Avx.Shuffle(t5, t7, 0x44), Avx.Shuffle(t5, t7, 0xEE));
        Avx.Permute2x128(s0, s4, 0x20).StoreUnsafe(ref target, 0);
        Avx.Permute2x128(s1, s5, 0x20).StoreUnsafe(ref target, (nuint)targetStride);
        Avx.Permute2x128(s2, s6, 0x20).StoreUnsafe(ref target, (nuint)(2 * targetStride));
        Avx.Permute2x128(s3, s7, 0x20).StoreUnsafe(ref target, (nuint)(3 * targetStride));
        Avx.Permute2x128(s0, s4, 0x31).StoreUnsafe(ref target, (nuint)(4 * targetStride));
        Avx.Permute2x128(s1, s5, 0x31).StoreUnsafe(ref target, (nuint)(5 * targetStride));
        Avx.Permute2x128(s2, s6, 0x31).StoreUnsafe(ref target, (nuint)(6 * targetStride));
        Avx.Permute2x128(s3, s7, 0x31).StoreUnsafe(ref target, (nuint)(7 * targetStride));
    }

    // The 4 × 4 block of doubles, likewise.
    private static void Transpose4(ref double source, int stride, ref double target, int targetStride)
    {
        var r0 = Vector256.LoadUnsafe(ref source);
        var r1 = Vector256.LoadUnsafe(ref source, (nuint)stride);
        var r2 = Vector256.LoadUnsafe(ref source, (nuint)(2 * stride));
        var r3 = Vector256.LoadUnsafe(ref source, (nuint)(3 * stride));
        var (t0, t1, t2, t3) = (Avx.UnpackLow(r0, r1), Avx.UnpackHigh(r0, r1), Avx.UnpackLow(r2, r3), Avx.UnpackHigh(r2, r3));
        Avx.Permute2x128(t0, t2, 0x20).StoreUnsafe(ref target, 0);
        Avx.Permute2x128(t1, t3, 0x20).StoreUnsafe(ref target, (nuint)targetStride);
        Avx.Permute2x128(t0, t2, 0x31).StoreUnsafe(ref target, (nuint)(2 * targetStride));
        Avx.Permute2x128(t1, t3, 0x31).StoreUnsafe(ref target, (nuint)(3 * targetStride));
    }

    /// <summary>A worker's block of M and padded last columns of B, kept between calls (grown, never shrunk).</summary>
    private static class PackScratch<T> where T : unmanaged
    {
        [ThreadStatic] private static T[]? t_buffer;

        public static T[] Get(int length) => t_buffer is { } buffer && buffer.Length >= length ? buffer : t_buffer = new T[length];
    }
}
