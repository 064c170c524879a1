using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Lockstep.Backends.Managed.Threading;

namespace Lockstep.Backends.Managed.Kernels;

// A slot's weight gradient with its transforms channels last, for the packed kernel (Winograd.Packed.cs). The slots'
// products M_ξ [K × C] += D_ξ [K × tiles] · V_ξᵀ are short and wide (AlexNet's conv2 at batch 8: 256 × 96 over a band
// of 28 tiles, 36 of them a band, M 3.5 MB a slot), and OpenBLAS ran them at 146–162 GFLOP/s on two threads where the
// input gradient's ran at 190–214: every call reads and writes its 256 × 96 block of M from beyond L2. The packed
// kernel needs no packing where the transforms write each tile's channels (and filters) side by side: a panel of
// PackRows channels is then PackRows contiguous elements a tile, C apart, and a block of PackColumns filters
// PackColumns contiguous elements a tile, K apart. So the slot's images are first copied channels last into
// zero-bordered planes (x as [2·tiles + r − 1]² × C, dy as [2·tiles]² × K); the transforms then run a vector of
// channels (filters) at a time, every load inside a bordered plane; and each kernel call adds its PackRows ×
// PackColumns block of the band's sums into M in place, the next call's block prefetched into L1 meanwhile.
// Interleaved call by call (AlexNet's conv2 at batch 8, 2 threads, float32, medians of 31, two processes): 20.8 and
// 21.6 ms against 22.7 and 23.9 with OpenBLAS's products, the products 15.4 and 15.7 ms (180 and 176 GFLOP/s) against
// 17.3 and 18.8; float32 against float64, err/(ε·√K) 0.72 against 1.15.
internal static partial class Winograd
{
    /// <summary>
    /// Whether a slot's weight gradient runs channels last (above): a 5×5 layer, AVX-512, the channels whole packed blocks
    /// and the filters whole vectors. 3×3 layers' slots were measured slower so (interleaved, 2 threads, float32):
    /// AlexNet's 13×13 384 → 384 at batch 8 38.8 against 33.6 ms and 384 → 256 12.4 against 10.8 — their M, 9.4 and
    /// 6.3 MB a slot, added to band after band — 256 → 384 level.
    /// </summary>
    internal static bool WeightsByChannels<T>(int r, int channels, int filters) where T : unmanaged =>
        Vector512.IsHardwareAccelerated && r == 5 && channels % PackRows<T>() == 0 && filters % Vector256<T>.Count == 0;

    /// <summary>
    /// Tiles a channels-last band transforms and multiplies at once (V and D of AlexNet's conv2: 2.8 MB of floats).
    /// Interleaved call by call (AlexNet's conv2 at batch 8, 2 threads, medians of 31): 56 tiles 19.0–19.6 ms against
    /// 20.2–20.6 with 28 (the products 14.2–14.4 against 15.4–15.5), 20.1 against 20.3 with 84, level with 42.
    /// </summary>
    internal const int ChannelsLastBandTiles = 56;

    /// <summary>A slot's buffers channels last: the bordered images, then V and D of a band, a padded last block of filters and a block of M.</summary>
    private readonly record struct ChannelsLastLayout
    {
        public ChannelsLastLayout(int r, int images, int channels, int filters, int outH, int outW, int lineElements)
        {
            TilesH = (outH + 1) / 2;
            TilesW = (outW + 1) / 2;
            InH = 2 * TilesH + r - 1;
            InW = 2 * TilesW + r - 1;
            Image = InH * InW * channels;
            Gradient = 4 * TilesH * TilesW * filters;
            Depth = Math.Min(ChannelsLastBandTiles, images * TilesH * TilesW);
            int Spread(int elements) => ((elements + lineElements - 1) / lineElements | 1) * lineElements;
            VStride = Spread(Depth * channels);
            DStride = Spread(Depth * filters);
            Elements = (long)images * (Image + Gradient) + (long)(r + 1) * (r + 1) * (VStride + DStride) + (long)Depth * PackColumns
                + 2L * 16 * PackColumns;
        }

        public int TilesH { get; }
        public int TilesW { get; }
        /// <summary>Rows and columns of a bordered input plane: every tile's α × α patch inside it.</summary>
        public int InH { get; }
        public int InW { get; }
        /// <summary>Elements of one bordered image (channels last) and of one bordered dy (2·TilesH × 2·TilesW × K).</summary>
        public int Image { get; }
        public int Gradient { get; }
        /// <summary>Tiles of a full band.</summary>
        public int Depth { get; }
        public int VStride { get; }
        public int DStride { get; }
        public long Elements { get; }
    }

    /// <summary>Elements of a channels-last slot of <paramref name="images"/> images, for either element type (64-byte lines of 16 or 8).</summary>
    private static long ChannelsLastSlotElements(int r, int images, int channels, int filters, int outH, int outW) =>
        Math.Max(new ChannelsLastLayout(r, images, channels, filters, outH, outW, 8).Elements,
            new ChannelsLastLayout(r, images, channels, filters, outH, outW, 16).Elements);

    // One slot's images (slot, slot + slots, …) channels last (above): their x and dy bordered, then band by band, V and
    // D_ξ of the band's tiles and M_ξ += D_ξ · V_ξᵀ; at the end dw[k, c] = Gᵀ M[k, c] G into the slot's partial (the
    // caller has summed db).
    private static void SlotWeightsByChannels<T>(ParallelGemm gemm, int r, in Sizes s, int slot, int slots, int n, ReadOnlySpan<T> x,
        ReadOnlySpan<T> dy, Span<T> work, Span<T> m, Span<T> dw, bool oneThread) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int images = (n - slot + slots - 1) / slots, positions = (r + 1) * (r + 1), kc = Spread<T>(s.Filters * s.Channels);
        var l = new ChannelsLastLayout(r, images, s.Channels, s.Filters, s.OutH, s.OutW, 64 / Unsafe.SizeOf<T>());
        if (work.Length < l.Elements || m.Length < positions * kc)
            throw new ArgumentException($"channels-last weight gradient: a slot of {work.Length} and M of {m.Length} elements, {l.Elements} and {positions * kc} needed");
        var bordered = work[..(images * l.Image)];
        var gradients = work.Slice(bordered.Length, images * l.Gradient);
        var v = work.Slice(bordered.Length + gradients.Length, positions * l.VStride);
        var d = work.Slice(bordered.Length + gradients.Length + v.Length, positions * l.DStride);
        var rest = work[(bordered.Length + gradients.Length + v.Length + d.Length)..];
        int inPlane = s.H * s.W, outPlane = s.OutH * s.OutW;
        for (int i = 0; i < images; i++)
        {
            int img = slot + i * slots;
            Border(x.Slice(img * s.Channels * inPlane, s.Channels * inPlane), s.Channels, s.H, s.W, s.PadTop, s.PadLeft, l.InH, l.InW,
                bordered.Slice(i * l.Image, l.Image));
            Border(dy.Slice(img * s.Filters * outPlane, s.Filters * outPlane), s.Filters, s.OutH, s.OutW, 0, 0, 2 * l.TilesH, 2 * l.TilesW,
                gradients.Slice(i * l.Gradient, l.Gradient));
        }
        int perImage = l.TilesH * l.TilesW, tiles = images * perImage;
        for (int t0 = 0; t0 < tiles; t0 += l.Depth)
        {
            int depth = Math.Min(l.Depth, tiles - t0);
            for (int t = 0; t < depth; t++)
            {
                int i = (t0 + t) / perImage, th = (t0 + t) % perImage / l.TilesW, tw = (t0 + t) % l.TilesW;
                InputTileByChannels(bordered.Slice(i * l.Image, l.Image), s.Channels, l.InW, th, tw, v[(t * s.Channels)..], l.VStride);
                GradientTileByChannels(gradients.Slice(i * l.Gradient, l.Gradient), s.Filters, 2 * l.TilesW, th, tw, d[(t * s.Filters)..], l.DStride);
            }
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            for (int xi = 0; xi < positions; xi++)
            {
                ChannelsLastProducts(d.Slice(xi * l.DStride, l.DStride), s.Filters, v.Slice(xi * l.VStride, l.VStride), s.Channels, depth,
                    m.Slice(xi * kc, kc), accumulate: t0 > 0, rest, xi + 1 < positions ? m.Slice((xi + 1) * kc, kc) : default);
            }
            gemm.Count(s.Filters, s.Channels, depth * positions, start, oneThread);
        }
        TransformWeightGradients(r, m, s.Filters, s.Channels, dw, 0, s.Filters);
    }

    // `count` planes [rows × cols] (NCHW's C × H × W) into target [outRows × outCols × count], channels last, at
    // (row + top, col + left), zeros around: a vector's worth of planes at a time, row after row, by 8 × 8 (4 × 4)
    // transposes where they fit, so that the reads run down a few planes in order.
    private static void Border<T>(ReadOnlySpan<T> planes, int count, int rows, int cols, int top, int left, int outRows, int outCols, Span<T> target)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int plane = rows * cols, lanes = Vector256<T>.Count, line = outCols * count;
        int last = Math.Min(rows, outRows - top), width = Math.Min(cols, outCols - left);
        target[..(top * line)].Clear();
        target[((last + top) * line)..].Clear();
        for (int row = top; row < last + top; row++)
        {
            target.Slice(row * line, left * count).Clear();
            target[((row * outCols + left + width) * count)..((row + 1) * line)].Clear();
        }
        for (int i = 0; i < count; i += lanes)
        for (int row = 0; row < last; row++)
        {
            TransposeRows(planes[(i * plane + row * cols)..], plane, lanes, width, target[(((row + top) * outCols + left) * count + i)..], count);
        }
    }

    // V_ξ[tile, c] = (Bᵀ d B)_ξ for one tile (th, tw) of a bordered image, a vector of channels at a time, into
    // v[ξ·stride + c]: Bᵀ along each of the patch's rows (rowsB), then down each column, as TransformInputRow6.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void InputTileByChannels<T>(ReadOnlySpan<T> image, int channels, int inW, int th, int tw, Span<T> v, int stride)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Span<Vector256<T>> rowsB = stackalloc Vector256<T>[36];
        int at = (2 * th * inW + 2 * tw) * channels;
        if (at + ((5 * inW + 5) * channels) + channels > image.Length || v.Length < 35 * stride + channels)
            throw new ArgumentException($"input tile ({th}, {tw}) does not fit a bordered image of {image.Length} or V of {v.Length} elements");
        ref T ir = ref MemoryMarshal.GetReference(image);
        ref T vr = ref MemoryMarshal.GetReference(v);
        nuint c1 = (nuint)channels, row = (nuint)(inW * channels), st = (nuint)stride;
        for (int c = 0; c < channels; c += Vector256<T>.Count)
        {
            for (int a = 0; a < 6; a++)
            {
                nuint p = (nuint)at + (nuint)a * row + (nuint)c;
                BtRow(Vector256.LoadUnsafe(ref ir, p), Vector256.LoadUnsafe(ref ir, p + c1), Vector256.LoadUnsafe(ref ir, p + 2 * c1),
                    Vector256.LoadUnsafe(ref ir, p + 3 * c1), Vector256.LoadUnsafe(ref ir, p + 4 * c1), Vector256.LoadUnsafe(ref ir, p + 5 * c1),
                    rowsB.Slice(6 * a, 6), 1);
            }
            for (int j = 0; j < 6; j++)
                BtColumn(rowsB[j], rowsB[6 + j], rowsB[12 + j], rowsB[18 + j], rowsB[24 + j], rowsB[30 + j], ref vr, (nuint)j * st + (nuint)c, 6 * st);
        }
    }

    // D_ξ[tile, k] = (A dy Aᵀ)_ξ for one 2 × 2 tile (th, tw) of a bordered dy, a vector of filters at a time, into
    // d[ξ·stride + k] (GradientTile5, as TransformGradientRow).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void GradientTileByChannels<T>(ReadOnlySpan<T> gradient, int filters, int outW, int th, int tw, Span<T> d, int stride)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int at = (2 * th * outW + 2 * tw) * filters;
        if (at + (outW + 1) * filters + filters > gradient.Length || d.Length < 35 * stride + filters)
            throw new ArgumentException($"gradient tile ({th}, {tw}) does not fit a bordered dy of {gradient.Length} or D of {d.Length} elements");
        ref T gr = ref MemoryMarshal.GetReference(gradient);
        ref T dr = ref MemoryMarshal.GetReference(d);
        nuint k1 = (nuint)filters, below = (nuint)(outW * filters), st = (nuint)stride;
        for (int k = 0; k < filters; k += Vector256<T>.Count)
        {
            nuint p = (nuint)at + (nuint)k;
            var (a0, a1) = (Vector256.LoadUnsafe(ref gr, p), Vector256.LoadUnsafe(ref gr, p + k1));                   // tile row 0
            var (b0, b1) = (Vector256.LoadUnsafe(ref gr, p + below), Vector256.LoadUnsafe(ref gr, p + below + k1));   // tile row 1
            GradientTile5(ref dr, (nuint)k, st, a0, a1, b0, b1);
        }
    }

    // M [K × C] (+)= D · Vᵀ over `depth` tiles, D [depth × K] and V [depth × C] channels last: for each block of PackRows
    // channels, the kernel on each block of PackColumns filters, adding into M's block in place (rows C apart) while it
    // prefetches the next block's lines; a last, narrower block of filters goes through a copy padded with zeros and a
    // block of M loaded into `scratch`. `next`, the next position's M, has its first block prefetched by the last call.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void ChannelsLastProducts<T>(ReadOnlySpan<T> d, int filters, ReadOnlySpan<T> v, int channels, int depth, Span<T> m,
        bool accumulate, Span<T> scratch, Span<T> next) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int pack = PackRows<T>(), whole = filters / PackColumns * PackColumns, rest = filters - whole, size = Unsafe.SizeOf<T>();
        if (channels % pack != 0 || depth < 1 || d.Length < (long)depth * filters || v.Length < (long)depth * channels
            || m.Length < (long)filters * channels || scratch.Length < depth * PackColumns + pack * PackColumns
            || (!next.IsEmpty && next.Length < (PackColumns - 1) * channels + pack))
        {
            throw new ArgumentException($"channels-last products: {filters} × {channels} (a multiple of {pack}) × {depth} do not fit " +
                $"D {d.Length}, V {v.Length}, M {m.Length}, scratch {scratch.Length} elements");
        }
        var tail = scratch[..(depth * PackColumns)];
        var block = scratch.Slice(tail.Length, pack * PackColumns);
        if (rest > 0)
        {
            tail.Clear();
            for (int t = 0; t < depth; t++) d.Slice(t * filters + whole, rest).CopyTo(tail.Slice(t * PackColumns, rest));
        }
        int lines = pack * size / 64 * PackColumns, shift = BitOperations.Log2((uint)(pack * size / 64));
        fixed (T* pm = m, pn = next)
        {
            for (int c0 = 0; c0 < channels; c0 += pack)
            for (int k0 = 0; k0 < filters; k0 += PackColumns)
            {
                // The block after this one: the next filters, else the next channels' first, else the next position's.
                T* after = k0 + PackColumns < filters ? pm + (k0 + PackColumns) * channels + c0
                    : c0 + pack < channels ? pm + c0 + pack : pn;
                var prefetch = after == null ? default : new Prefetch((byte*)after, (nint)channels * size, shift, near: true);
                int end = after == null ? 0 : lines;
                var panel = v[c0..];
                if (k0 < whole)
                {
                    PackedKernel(panel, channels, d[k0..], filters, depth, m[(k0 * channels + c0)..], channels, accumulate, prefetch, 0, end);
                    continue;
                }
                for (int j = 0; j < PackColumns; j++)
                {
                    var row = block.Slice(j * pack, pack);
                    if (accumulate && j < rest) m.Slice((k0 + j) * channels + c0, pack).CopyTo(row);
                    else row.Clear();
                }
                PackedKernel(panel, channels, tail, PackColumns, depth, block, pack, accumulate: true, prefetch, 0, end);
                for (int j = 0; j < rest; j++) block.Slice(j * pack, pack).CopyTo(m.Slice((k0 + j) * channels + c0, pack));
            }
        }
    }
}
