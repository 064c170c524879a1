using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Lockstep.Backends.Managed.Tensors;
using Lockstep.Backends.Managed.Threading;

namespace Lockstep.Backends.Managed.Kernels;

// Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2015):
// each 2×2 block of outputs ("tile") of a 3×3, stride-1 convolution is
//     Y = Aᵀ [ Σ_c (G g_kc Gᵀ) ⊙ (Bᵀ d_c B) ] A
// for the 4×4 input patch d_c under the tile. Over all tiles and channels the Σ_c is, for each of the 16 positions ξ of the
// 4×4 transformed tile, one matrix product M_ξ [K × T] = U_ξ [K × C] · V_ξ [C × T]: 16 products of 16·K·C·T multiply-adds
// in place of im2col's 36·K·C·T — 2.25× fewer — plus transforms linear in C·T and K·T.
//
//     Bᵀ = | 1  0 −1  0 |     G = | 1    0    0  |     Aᵀ = | 1  1  1  0 |
//          | 0  1  1  0 |         | ½    ½    ½  |          | 0  1 −1 −1 |
//          | 0 −1  1  0 |         | ½   −½    ½  |
//          | 0  1  0 −1 |         | 0    0    1  |
//
// The same kernel computes the input gradient of such a convolution: dx = dy ⋆ w', a 3×3 stride-1 convolution of dy with
// w'[c, k, i, j] = w[k, c, 2 − i, 2 − j] and top/left padding 2 − P, cut to the input's size. Its transformed kernel
// need not be computed: G with its columns reversed is G with rows 0 and 3 swapped, so U' is the forward's U with
// positions mirrored and each [K × C] matrix read transposed (Mirror). Where the products run on packed weights
// (Winograd.Packed.cs), the forward's U, packed by blocks of filters, is repacked by blocks of channels for them.
//
// 5×5 convolutions (AlexNet's conv2) run F(2×2, 5×5) the same way: 6×6 input patches, 36 products of 36·K·C·T
// multiply-adds in place of im2col's 100·K·C·T — 2.8× fewer — with the points 0, ±1, ±2, ∞ (Lavin & Gray's F(4, 3)
// transforms of the input, the same points):
//
//     Bᵀ = | 4  0 −5  0  1  0 |     G = |  1/4    0     0     0     0   |     Aᵀ = | 1  1  1  1  1  0 |
//          | 0 −4 −4  1  1  0 |         | −1/6  −1/6  −1/6  −1/6  −1/6  |          | 0  1 −1  2 −2  1 |
//          | 0  4 −4 −1  1  0 |         | −1/6   1/6  −1/6   1/6  −1/6  |
//          | 0 −2 −1  2  1  0 |         |  1/24  1/12  1/6   1/3   2/3  |
//          | 0  2 −1 −2  1  0 |         |  1/24 −1/12  1/6  −1/3   2/3  |
//          | 0  4  0 −5  0  1 |         |   0     0     0     0     1   |
//
// Its gradient is the 5×5 convolution of dy with w turned 180° and padding 4 − P.
//
// The weight gradient is the forward's dual, F(r×r, 2×2): differentiating Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A by g gives, for
// each 2×2 tile of dy and the same α×α input patch d the forward reads,
//     dw_tile = Gᵀ [ (A dy_tile Aᵀ) ⊙ (Bᵀ d B) ] G,
// so that over all tiles of the images M_ξ [K × C] = Σ_tiles (A dy Aᵀ)_ξ [K × tiles] · V_ξᵀ [tiles × C], V_ξ the
// forward's transformed input, and dw[k, c] = Gᵀ M[k, c] G: per tile of four outputs and (k, c) pair α² multiply-adds
// where im2col's dw does 4·r² — 16 against 36 (3×3), 36 against 100 (5×5).
//
// The transforms and the loops around them are compiled fully optimised at their first call (AggressiveOptimization):
// under tiered compilation a single band's phases call them from many small items, and VGG16's 14×14×512 layers then ran 10–11 ms instead of 8 for
// whole measurements in about half the runs (never with DOTNET_TieredCompilation=0: 7.7–8.0 ms in three runs of three).
//
// Determinism: the tiles are processed in bands of whole tile rows fixed by the geometry alone, each band by one worker;
// every output is computed inside one band in a fixed order, so results are the same bits on any number of threads.
// A call with fewer bands than workers (a single band where tiles are few) goes band after band and splits each by
// phase instead — the input transform by channels, the products by position, each whole on one worker, the output
// transform by filters — which leaves every element's arithmetic as one worker would do it. The weight gradient does
// the same where all the batch's tiles fit one band (PhasesWeights), with dy's transform and dw's by filters; elsewhere
// its slots sum images into partials, added in order.

/// <summary>CONV 3×3 and 5×5 / stride 1 by Winograd F(2×2, 3×3) and F(2×2, 5×5): forward, backward-data and, by the dual F(r×r, 2×2), the weight gradient.</summary>
internal static partial class Winograd
{
    /// <summary>Below this many input channels or filters the products are too thin to repay the transforms.</summary>
    public const int MinChannels = 32;

    /// <summary>
    /// Half the tiles the weight gradient (and a 5×5 convolution) needs over the batch: its products are as wide as
    /// the tiles, and narrower ones run well below the GEMM's speed.
    /// </summary>
    public const int MinBandTiles = 128;

    /// <summary>Tiles over the batch below which a 3×3 convolution's forward and input gradient go by im2col.</summary>
    public const int MinTiles = 64;

    /// <summary>
    /// Elements of the transformed input and products (V and M) one band may take: 32 MiB of floats. Against 16 MiB
    /// (2 threads, OpenBLAS 0.3.29, float32, interleaved call by call, medians of 26): AlexNet's conv4 (13×13, 384 → 384,
    /// batch 8; one band phase by phase instead of two) forward 13.7 against 14.5 ms and input gradient 13.7 against
    /// 14.4, its products at 189 against 180 GFLOP/s; VGG16's 28×28 layers at batch 2 (likewise) 256 → 512 11.8 against
    /// 12.5, 512 → 512 21.8 against 22.6; its 56×56, 112×112 and 224×224 layers level.
    /// </summary>
    public const int BandElements = 1 << 23;

    /// <summary>
    /// The same for the weight gradient's bands (V and the transformed dy), 2 MiB of floats: its products sum over the
    /// tiles, so narrower bands cost them little, and the transforms then write into the core's caches. Measured (two
    /// threads, OpenBLAS 0.3.29, float32, budgets interleaved call by call, medians of 21): AlexNet's 13×13 layers at
    /// batch 8 7.5 against 9.6 ms (256 → 256), 17.3 against 19.6 (384 → 384), 11.9 against 13.5 (384 → 256) with 2^21
    /// elements; VGG16's 56×56×256 at batch 2 26.1 against 29.7, 112×112×128 and AlexNet's 5×5 conv2 level, 28×28×512
    /// 32.4 against 31.3. The forward and input gradient keep the larger budget: their products are as wide as the band
    /// (28×28×512 at 2^20: 31.6–32.5 against 24.1–24.9 ms).
    /// </summary>
    public const int WeightsBandElements = 1 << 19;

    /// <summary>
    /// Multiply-adds K·C·tiles under which a product of one tile row counts as small: OpenBLAS multiplies such matrices
    /// without packing them, fast even a few columns wide, and one row a band keeps its V and M in the core's caches.
    /// Taken where a row has at least <see cref="SmallProductTiles"/> tiles. Measured (2 threads, OpenBLAS 0.3.29,
    /// float32, wall, interleaved): AlexNet's conv2 (8×96×27² → 256, 5×5) 25.5–25.7 ms forward and 29 backward-data
    /// with one row a band, against 29–30 and 31–34 with 16 MiB bands. Smaller bands for the 3×3 layers measured no
    /// better at 2 threads (VGG16's 28×28×512 and 56×56×256 at batch 2 up to 1.3× slower, AlexNet's 13×13 layers with
    /// 7-tile rows 2× slower), so those keep the budget.
    /// </summary>
    public const long SmallProduct = 1 << 20;

    /// <summary>Tiles a row needs for <see cref="SmallProduct"/>'s one-row bands: fewer ran 2× slower on two threads.</summary>
    public const int SmallProductTiles = 14;

    /// <summary>
    /// Forward and input gradient: a 3×3 or 5×5, stride-1, undilated, ungrouped convolution with top/left padding
    /// ≤ F − 1, at least <see cref="MinChannels"/> channels both ways and, over the batch, at least
    /// <see cref="MinTiles"/> tiles (3×3) or two bands' worth (5×5, <see cref="MinBandTiles"/>). Measured (one thread,
    /// OpenBLAS, float32): VGG16's layers from 224×224×64 to 28×28×512 and AlexNet's 13×13 layers at batch 8 run
    /// 1.1–1.6× faster than im2col; 16 channels ran slower. A single band on two threads (phase by phase; float32,
    /// OpenBLAS, medians): 3×3 at 64–196 tiles forward 1.1–1.8× and input gradient 1.05–1.2× faster (VGG16's
    /// 14×14×512 at batch 2: 7.8 against 10.2 ms forward), at 49 tiles the input gradient 1.1× slower; 5×5 at 98 tiles
    /// (13×13, 96 → 256) 1.2× slower.
    /// </summary>
    public static bool Applies(ConvSpec spec, int n, int channels, int filters, int outH, int outW) =>
        Transforms(spec, channels, filters) && Tiles(n, outH, outW) >= (spec.KernelH == 3 ? MinTiles : 2 * MinBandTiles);

    /// <summary>
    /// The weight gradient: where <see cref="Applies"/> and with at least two bands' worth of tiles
    /// (<see cref="MinBandTiles"/>) for its slots — their products sum over a band's tiles, and fewer make them too thin
    /// (14×14×512 at batch 2, 98 tiles: 12.0 ms against im2col's 11.1, two threads) — or where it goes phase by phase
    /// over the workers, all the batch's tiles in one band (<see cref="PhasesWeights"/>).
    /// </summary>
    public static bool AppliesToWeights(ConvSpec spec, int n, int channels, int filters, int outH, int outW) =>
        Transforms(spec, channels, filters) && (Tiles(n, outH, outW) >= 2 * MinBandTiles || PhasesWeights(spec.KernelH, n, channels, filters, outH, outW));

    /// <summary>Filters × channels from which a phased weight gradient beats the slots' even where those have tiles enough.</summary>
    public const int PhasedWeightsPlane = 1 << 18;

    /// <summary>
    /// Whether a 3×3 layer's weight gradient goes phase by phase over the workers (<see cref="PhasedWeights{T}"/>): its
    /// tiles over the whole batch fit one band of <see cref="BandElements"/>, and either they are too few for
    /// the slots' bands (fewer than 2·<see cref="MinBandTiles"/>: VGG16's 14×14×512 at batch 2, 98 tiles, where im2col
    /// did it) or the layer is as wide as 512 × 512, whose M takes 16 MiB a slot. Measured (2 threads, OpenBLAS 0.3.29,
    /// float32, interleaved call by call, medians of 35): VGG16's 14×14×512 at batch 2 8.2 against im2col's batched
    /// product 12.1 ms, at batch 4 13.3 against 25.4; 28×28×512 at batch 2 23.5 against the slots' 26.4; the slots
    /// stayed ahead on AlexNet's 13×13 layers at batch 8 (384 → 384: 14.9 against 16.0) and on 28×28 256 → 512 at
    /// batch 2 (13.8 against 14.5). The geometry alone decides, never the workers.
    /// </summary>
    internal static bool PhasesWeights(int r, int n, int channels, int filters, int outH, int outW)
    {
        long tiles = Tiles(n, outH, outW);
        return r == 3 && tiles >= MinTiles && (tiles < 2 * MinBandTiles || (long)channels * filters >= PhasedWeightsPlane)
            && new Plan(3, n, channels, filters, outH, outW, BandElements).Bands == 1;
    }

    /// <summary>The bands a forward or input gradient of this geometry falls into (tests).</summary>
    internal static int Bands(int r, int n, int channels, int filters, int outH, int outW) => new Plan(r, n, channels, filters, outH, outW).Bands;

    private static bool Transforms(ConvSpec spec, int channels, int filters) =>
        spec is { KernelH: 3 or 5, StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1, Groups: 1 } && spec.KernelW == spec.KernelH
        && spec.Padding.Top < spec.KernelH && spec.Padding.Left < spec.KernelW && channels >= MinChannels && filters >= MinChannels;

    private static long Tiles(int n, int outH, int outW) => (long)n * ((outH + 1) / 2) * ((outW + 1) / 2);

    /// <summary>Elements of the working buffers a call rents for n images of outH × outW outputs (either direction) with an r×r kernel.</summary>
    public static long WorkspaceElements(int r, int n, int channels, int filters, int outH, int outW, int threads)
    {
        var plan = new Plan(r, n, channels, filters, outH, outW);
        // As Run: bands over the workers where they are at least as many, else band after band, phase by phase.
        int slots = threads > 1 && plan.Bands >= threads ? Math.Min(threads, plan.Bands) : 1;
        long phasedScratch = threads > 1 && plan.Bands < threads ? (long)(threads - 1) * plan.ScratchElements : 0;
        return (long)plan.Positions * (channels * filters + 64) + slots * plan.SlotElements + phasedScratch;   // + 64: Spread
    }

    /// <summary>
    /// y [N, K, H', W'] = b + Σ_c w[k, c] ⋆ x[n, c] for an r×r stride-1 convolution with top/left padding (padTop,
    /// padLeft). The weights are transformed on every call; a 3×3 layer's transform is then kept beside
    /// <paramref name="weightTensor"/> (when given) for its input gradient, until the weights are written.
    /// </summary>
    public static void Forward<T>(ParallelGemm gemm, WorkerPool workers, BufferPool pool, int r, ReadOnlySpan<T> x, int n, int channels,
        int h, int w, ReadOnlySpan<T> weights, int filters, ReadOnlySpan<T> bias, int padTop, int padLeft, int outH, int outW, Span<T> y,
        ManagedTensor? weightTensor = null) where T : unmanaged, IFloatingPointIeee754<T>
    {
        long version = weightTensor?.Version ?? 0;
        var u = pool.Rent<T>((r + 1) * (r + 1) * Spread<T>(filters * channels), clear: false);
        bool packed = PacksForward<T>(r, n, channels, filters, outH, outW), keep = false;
        try
        {
            WeightJob<T>.Run(workers, r, weights, filters, channels, packed ? WeightLayout.PackedFilters : WeightLayout.Rows, u);
            Run(gemm, workers, pool, r, x, n, channels, h, w, u, filters, bias, padTop, padLeft, outH, outW, y, packed: packed);
            keep = weightTensor is not null && r == 3;
        }
        finally
        {
            if (keep) weightTensor!.OfferDerived(u, version, (int)(packed ? WeightLayout.PackedFilters : WeightLayout.Rows));
            else pool.Return(u);
        }
    }

    /// <summary>
    /// dx [N, C, H, W] of an r×r stride-1 convolution with top/left padding (padTop, padLeft), from dy [N, K, H', W'].
    /// A 3×3 layer reads the forward's transform mirrored: the one kept beside <paramref name="weightTensor"/> when the
    /// weights have not been written since it was made (the forward of a training step), else made anew (and kept).
    /// </summary>
    public static void BackwardData<T>(ParallelGemm gemm, WorkerPool workers, BufferPool pool, int r, ReadOnlySpan<T> dy, int n, int filters,
        int outH, int outW, ReadOnlySpan<T> weights, int channels, int padTop, int padLeft, int h, int w, Span<T> dx,
        ManagedTensor? weightTensor = null) where T : unmanaged, IFloatingPointIeee754<T>
    {
        // 3×3: the forward's transform, read mirrored and transposed (Sizes.Mirrored); 5×5 transforms w turned 180°.
        bool mirrored = r == 3;
        int length = (r + 1) * (r + 1) * Spread<T>(filters * channels);
        // Packed where the forward packs and the channels are whole blocks: the forward's transform, packed by filters, is
        // repacked by channels panel by panel in the products (PackedProduct's byFilters). A 5×5 layer's is made packed
        // by channels (PacksRotated).
        bool packed = mirrored ? PacksInputGradient<T>(r, n, channels, filters, outH, outW) : PacksRotated<T>(r, channels);
        var layout = packed ? mirrored ? WeightLayout.PackedFilters : WeightLayout.PackedRotated : mirrored ? WeightLayout.Rows : WeightLayout.Rotated;
        var cache = mirrored ? weightTensor : null;
        long version = cache?.Version ?? 0;
        var u = cache?.TakeDerived<T>((int)layout);
        if (u is not null && u.Length != length)
        {
            pool.Return(u);
            u = null;
        }
        bool transformed = u is not null, keep = false;
        u ??= pool.Rent<T>(length, clear: false);
        try
        {
            if (!transformed) WeightJob<T>.Run(workers, r, weights, filters, channels, layout, u);
            Run(gemm, workers, pool, r, dy, n, filters, outH, outW, u, channels, default, r - 1 - padTop, r - 1 - padLeft, h, w, dx, mirrored, packed);
            keep = cache is not null;
        }
        finally
        {
            if (keep) cache!.OfferDerived(u, version, (int)layout);
            else pool.Return(u);
        }
    }

    /// <summary>
    /// dw [K, C, r, r] and db [K] of an r×r stride-1 convolution with top/left padding (padTop, padLeft), from dy
    /// [N, K, H', W'] and x [N, C, H, W], by F(r×r, 2×2). In parallel, slot s takes images s, s + slots, … in order and
    /// sums their products into its own M (and db), whichever thread runs it; the slots' results are added in order
    /// (the scheme of im2col's dw).
    /// </summary>
    public static unsafe void BackwardWeights<T>(ParallelGemm gemm, WorkerPool workers, BufferPool pool, int r, ReadOnlySpan<T> dy,
        ReadOnlySpan<T> x, int n, int channels, int h, int w, int filters, int padTop, int padLeft, int outH, int outW,
        Span<T> dw, Span<T> db) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (PhasesWeights(r, n, channels, filters, outH, outW))
        {
            PhasedWeights(gemm, workers, pool, r, dy, x, n, channels, h, w, filters, padTop, padLeft, outH, outW, dw, db);
            return;
        }
        int slots = workers.Threads > 1 && n > 1 ? Math.Min(workers.Threads, n) : 1;
        long work = WeightsSlotElements(r, n, slots, channels, filters, outH, outW);
        var shape = new Sizes(channels, h, w, filters, padTop, padLeft, outH, outW);
        var job = Cache<WeightsJob<T>>.Rent();
        var buffers = job.Slots(slots);
        long mElements = (long)(r + 1) * (r + 1) * Spread<T>(filters * channels);
        for (int i = 0; i < slots; i++) buffers[i] = pool.Rent<T>(checked((int)(work + mElements + dw.Length + db.Length)), clear: false);
        try
        {
            fixed (T* px = x, pdy = dy)
            {
                job.Set(gemm, r, work, shape, buffers, n, slots, px, x.Length, pdy, dy.Length, dw.Length, db.Length);
                workers.For(slots, job);
            }
            // Slot 0's partial, then the others' added in slot order.
            var first = buffers[0].AsSpan(checked((int)(work + mElements)), dw.Length + db.Length);
            first[..dw.Length].CopyTo(dw);
            first.Slice(dw.Length, db.Length).CopyTo(db);
            PartialSums<T>.Add(workers, dw, buffers, 1, slots - 1, checked((int)(work + mElements)));
            for (int i = 1; i < slots; i++) TensorPrimitives.Add(db, buffers[i].AsSpan(checked((int)(work + mElements)) + dw.Length, db.Length), db);
        }
        finally
        {
            for (int i = 0; i < slots; i++)
            {
                pool.Return(buffers[i]);
                buffers[i] = null!;
            }
            job.Clear();
            Cache<WeightsJob<T>>.Return(job);
        }
    }

    // The weight gradient of a single band (PhasesWeights), phase by phase over the workers: V from x by chunks of
    // channels, Udy = (A dy Aᵀ) and db by chunks of filters, the 16 products M_ξ = Udy_ξ · V_ξᵀ by position (each whole
    // on one worker, over all the batch's tiles), then dw = Gᵀ M G by chunks of filters. Where the products run fused
    // with dw's transform (FusesWeights), M is not stored whole: each position's operands are packed (a position an
    // item), then an item, a block of channels by a few blocks of filters, runs every position's kernel calls and
    // transforms their blocks into dw at once (Winograd.Packed.cs). Every element's arithmetic is the same whichever
    // worker does it, and the same on both paths, so the bits depend neither on the thread count nor on the path.
    private static unsafe void PhasedWeights<T>(ParallelGemm gemm, WorkerPool workers, BufferPool pool, int r, ReadOnlySpan<T> dy,
        ReadOnlySpan<T> x, int n, int channels, int h, int w, int filters, int padTop, int padLeft, int outH, int outW,
        Span<T> dw, Span<T> db) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var plan = new Plan(r, n, channels, filters, outH, outW, BandElements);
        var shape = new Sizes(channels, h, w, filters, padTop, padLeft, outH, outW);
        bool fused = FusesWeights<T>(channels, plan.TileRows * plan.TilesW);
        var slot = pool.Rent<T>(checked((int)(plan.SlotElements + (long)(workers.Threads - 1) * plan.ScratchElements)), clear: false);
        var m = pool.Rent<T>(checked(plan.Positions * PhasedPlane<T>(fused, filters, channels, plan.TileRows * plan.TilesW)), clear: false);
        var job = Cache<PhasedWeightsJob<T>>.Rent();
        try
        {
            fixed (T* px = x, pdy = dy, pdw = dw, pdb = db)
            {
                job.Set(gemm, plan, shape, fused, slot, m, px, x.Length, pdy, dy.Length, pdw, dw.Length, pdb, db.Length);
                var phases = fused
                    ? (ReadOnlySpan<WeightsPhase>)[WeightsPhase.Input, WeightsPhase.Gradient, WeightsPhase.Pack, WeightsPhase.PackedProducts]
                    : [WeightsPhase.Input, WeightsPhase.Gradient, WeightsPhase.Products, WeightsPhase.Output];
                foreach (var phase in phases)
                {
                    job.Phase = phase;
                    workers.For(job.Items(phase), job);
                }
            }
        }
        finally
        {
            job.Clear();
            Cache<PhasedWeightsJob<T>>.Return(job);
            pool.Return(m);
            pool.Return(slot);
        }
    }

    // A position's share of PhasedWeights' second buffer: its packed operands (fused), or its M_ξ; spread (see Spread).
    private static int PhasedPlane<T>(bool fused, int filters, int channels, int tiles) where T : unmanaged =>
        Spread<T>(fused ? PackedWeightOperandsElements<T>(filters, channels, tiles) : filters * channels);

    /// <summary>Elements of the working buffers <see cref="BackwardWeights{T}"/> rents.</summary>
    public static long WeightsWorkspaceElements(int r, int n, int channels, int filters, int outH, int outW, int threads)
    {
        if (PhasesWeights(r, n, channels, filters, outH, outW))
        {
            // M, or the packed operands where the products are fused with dw's transform (the larger: the dtype is not
            // known here, nor whether AVX-512 is there).
            var plan = new Plan(r, n, channels, filters, outH, outW, BandElements);
            long plane = Math.Max(filters * channels, PackedWeightOperandsElements<float>(filters, channels, plan.TileRows * plan.TilesW)) + 64;
            return plan.SlotElements + (long)(threads - 1) * plan.ScratchElements + plan.Positions * plane;
        }
        int slots = threads > 1 && n > 1 ? Math.Min(threads, n) : 1;
        return slots * (WeightsSlotElements(r, n, slots, channels, filters, outH, outW) + (long)(r + 1) * (r + 1) * (filters * channels + 64)
            + (long)filters * channels * r * r + filters);
    }

    // The V, Udy and scratch elements a slot needs: the larger of the plans for its ⌈n/slots⌉ and ⌊n/slots⌋ images.
    // A 5×5 layer's may run channels last (Winograd.ChannelsLast.cs), which needs its own.
    private static long WeightsSlotElements(int r, int n, int slots, int channels, int filters, int outH, int outW) =>
        Math.Max(Math.Max(new Plan(r, (n + slots - 1) / slots, channels, filters, outH, outW, WeightsBandElements).SlotElements,
            new Plan(r, Math.Max(1, n / slots), channels, filters, outH, outW, WeightsBandElements).SlotElements),
            r == 5 ? ChannelsLastSlotElements(r, (n + slots - 1) / slots, channels, filters, outH, outW) : 0);

    // One slot's images (slot, slot + slots, …) in order, their tile rows counted over those images and cut into bands
    // as the forward's: per band, V from x (as the forward) and Udy_ξ [K × tiles] = (A dy Aᵀ)_ξ, then M_ξ += Udy_ξ · V_ξᵀ;
    // at the end dw[k, c] = Gᵀ M[k, c] G into the slot's partial, and db summed image by image.
    private static void SlotWeights<T>(ParallelGemm gemm, int kernel, long workElements, in Sizes s, int slot, int slots, int n,
        ReadOnlySpan<T> x, ReadOnlySpan<T> dy, Span<T> buffer, int dwLength, int dbLength, bool oneThread) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int images = (n - slot + slots - 1) / slots;
        var plan = new Plan(kernel, images, s.Channels, s.Filters, s.OutH, s.OutW, WeightsBandElements);
        int positions = plan.Positions, kc = Spread<T>(s.Filters * s.Channels), inPlane = s.H * s.W, outPlane = s.OutH * s.OutW;
        var work = buffer[..checked((int)plan.SlotElements)];
        var m = buffer.Slice((int)workElements, positions * kc);
        var partial = buffer.Slice((int)workElements + positions * kc, dwLength + dbLength);
        var db = partial.Slice(dwLength, dbLength);
        db.Clear();
        var scratch = plan.Scratch(work);
        var dySizes = s with { H = s.OutH, W = s.OutW, PadTop = 0, PadLeft = 0 };
        for (int img = slot; img < n; img += slots)
        {
            var dyn = dy.Slice(img * s.Filters * outPlane, s.Filters * outPlane);
            for (int k = 0; k < s.Filters; k++) db[k] += TensorPrimitives.Sum(dyn.Slice(k * outPlane, outPlane));
        }
        if (WeightsByChannels<T>(kernel, s.Channels, s.Filters))
        {
            SlotWeightsByChannels(gemm, kernel, s, slot, slots, n, x, dy, buffer[..(int)workElements], m, partial[..dwLength], oneThread);
            return;
        }
        // Every slot has an image (slots ≤ n), so band 0 exists and sets M (β = 0) before the others add to it.
        for (int band = 0; band < plan.Bands; band++)
        {
            int row0 = band * plan.RowsPerBand, rows = plan.Rows(band), tiles = rows * plan.TilesW;
            var l = BandBuffers(plan, s, band, work, out var v, out var u);   // u: the transformed dy, as the forward's M
            for (int r = 0; r < rows; r++)
            {
                int img = slot + (row0 + r) / plan.TilesH * slots, th = (row0 + r) % plan.TilesH;
                var xn = x.Slice(img * s.Channels * inPlane, s.Channels * inPlane);
                var dyn = dy.Slice(img * s.Filters * outPlane, s.Filters * outPlane);
                TransformInputRows(plan, xn, s, th, scratch, v, r * plan.TilesW, l, 0, s.Channels);
                for (int k = 0; k < s.Filters; k++)
                {
                    TransformGradientRow(plan.R, dyn.Slice(k * outPlane, outPlane), dySizes, th, plan.TilesW, scratch, u,
                        k * l.Ld + r * plan.TilesW, l.MStride);
                }
            }
            for (int xi = 0; xi < positions; xi++)
            {
                gemm.Gemm(false, true, s.Filters, s.Channels, tiles, T.One, u.Slice(xi * l.MStride, s.Filters * l.Ld), l.Ld,
                    v.Slice(xi * l.VStride, s.Channels * l.Ld), l.Ld, band == 0 ? T.Zero : T.One, m.Slice(xi * kc, s.Filters * s.Channels), s.Channels, oneThread);
            }
        }
        TransformWeightGradients(plan.R, m, s.Filters, s.Channels, partial[..dwLength], 0, s.Filters);
    }

    // U_ξ[k, tile] = (A dy Aᵀ)_ξ for the tiles of tile row th of one filter's dy plane, A = (Aᵀ)ᵀ [α × 2]: along each
    // row of the tile (a, b) → (a, a + b, a − b, −b) for r = 3, (a, a + b, a − b, a + 2b, a − 2b, b) for r = 5, then
    // the same down each column; U_ξ of tile t at u[start + ξ·stride + t] (whole vectors, as TransformInputRow).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformGradientRow<T>(int r, ReadOnlySpan<T> plane, in Sizes s, int th, int tilesW, Span<T> scratch,
        Span<T> u, int start, int stride) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int half = Half<T>(tilesW + 2 + Vector256<T>.Count);
        SplitRows(plane, s, th, 2, half, scratch);
        ref T sr = ref MemoryMarshal.GetReference(scratch);
        ref T ur = ref MemoryMarshal.GetReference(u);
        nuint h = (nuint)half, st = (nuint)stride;
        for (int t = 0; t < tilesW; t += Vector256<T>.Count)
        {
            nuint i = (nuint)t, at = (nuint)start + i;
            var (a0, a1) = (Vector256.LoadUnsafe(ref sr, i), Vector256.LoadUnsafe(ref sr, h + i));            // tile row 0
            var (b0, b1) = (Vector256.LoadUnsafe(ref sr, 2 * h + i), Vector256.LoadUnsafe(ref sr, 3 * h + i));   // tile row 1
            if (r == 3) GradientTile3(ref ur, at, st, a0, a1, b0, b1);
            else GradientTile5(ref ur, at, st, a0, a1, b0, b1);
        }
    }

    // (A dy Aᵀ)_ξ of a vector of 2 × 2 tiles of dy, rows (a0, a1) and (b0, b1), at u[at + ξ·st]: along each row
    // (a, b) → (a, a + b, a − b, −b) (r = 3) or (a, a + b, a − b, a + 2b, a − 2b, b) (r = 5), then column j of A·(top,
    // bottom) into positions ξ = 4i + j or 6i + j.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void GradientTile3<T>(ref T u, nuint at, nuint st, Vector256<T> a0, Vector256<T> a1, Vector256<T> b0, Vector256<T> b1)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Column(ref u, at, st, 0, a0, b0);
        Column(ref u, at, st, 1, a0 + a1, b0 + b1);
        Column(ref u, at, st, 2, a0 - a1, b0 - b1);
        Column(ref u, at, st, 3, -a1, -b1);

        static void Column(ref T u, nuint at, nuint st, int j, Vector256<T> top, Vector256<T> bottom)
        {
            nuint c = at + (nuint)j * st;
            top.StoreUnsafe(ref u, c);
            (top + bottom).StoreUnsafe(ref u, c + 4 * st);
            (top - bottom).StoreUnsafe(ref u, c + 8 * st);
            (-bottom).StoreUnsafe(ref u, c + 12 * st);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void GradientTile5<T>(ref T u, nuint at, nuint st, Vector256<T> a0, Vector256<T> a1, Vector256<T> b0, Vector256<T> b1)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (a2, b2) = (a1 + a1, b1 + b1);
        Column(ref u, at, st, 0, a0, b0);
        Column(ref u, at, st, 1, a0 + a1, b0 + b1);
        Column(ref u, at, st, 2, a0 - a1, b0 - b1);
        Column(ref u, at, st, 3, a0 + a2, b0 + b2);
        Column(ref u, at, st, 4, a0 - a2, b0 - b2);
        Column(ref u, at, st, 5, a1, b1);

        static void Column(ref T u, nuint at, nuint st, int j, Vector256<T> top, Vector256<T> bottom)
        {
            nuint c = at + (nuint)j * st;
            var twice = bottom + bottom;
            top.StoreUnsafe(ref u, c);
            (top + bottom).StoreUnsafe(ref u, c + 6 * st);
            (top - bottom).StoreUnsafe(ref u, c + 12 * st);
            (top + twice).StoreUnsafe(ref u, c + 18 * st);
            (top - twice).StoreUnsafe(ref u, c + 24 * st);
            bottom.StoreUnsafe(ref u, c + 30 * st);
        }
    }

    // dw[k, c] = Gᵀ M[k, c] G for filters [k0, k1) and every channel, M_ξ[k, c] at m[ξ·Spread(K·C) + k·C + c].
    private static void TransformWeightGradients<T>(int r, ReadOnlySpan<T> m, int filters, int channels, Span<T> dw, int k0, int k1)
        where T : unmanaged, IFloatingPointIeee754<T> =>
        TransformWeightGradients(r, m, Spread<T>(filters * channels), channels, k0, k1, channels, dw, channels, 0, 0);

    // dw[dk + k, dc + c] (dw with `channels` channels) = Gᵀ M[k, c] G for k in [k0, k1) and c < cols, M_ξ[k, c] at
    // m[ξ·plane + k·ld + c]; a vector of channels at once: Gᵀ down each column of M, then along each row of the result.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformWeightGradients<T>(int r, ReadOnlySpan<T> m, int plane, int ld, int k0, int k1, int cols, Span<T> dw,
        int channels, int dk, int dc) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int alpha = r + 1, lanes = Vector256<T>.Count, taps = r * r;
        Span<Vector256<T>> mv = stackalloc Vector256<T>[36], left = stackalloc Vector256<T>[30], result = stackalloc Vector256<T>[25];
        Span<T> padded = stackalloc T[Vector256<T>.Count];
        Span<T> lanesOut = stackalloc T[25 * Vector256<T>.Count];
        for (int k = k0; k < k1; k++)
        {
            for (int c0 = 0; c0 < cols; c0 += lanes)
            {
                int width = Math.Min(lanes, cols - c0);
                for (int xi = 0; xi < alpha * alpha; xi++)
                {
                    var row = m.Slice(xi * plane + k * ld + c0, width);
                    if (width == lanes)
                    {
                        mv[xi] = Vector256.Create(row);
                        continue;
                    }
                    padded.Clear();
                    row.CopyTo(padded);
                    mv[xi] = Vector256.Create((ReadOnlySpan<T>)padded);
                }
                for (int j = 0; j < alpha; j++) GTranspose(r, mv, j, alpha, left, j, alpha);    // left[p·α + j]
                for (int p = 0; p < r; p++) GTranspose(r, left, p * alpha, 1, result, p * r, 1); // result[p·r + q]
                // dw[dk + k, dc + c0 + l, p, q] from lane l of result[p·r + q]: a vector of channels' taps lie side by
                // side in dw, lanes × r² elements, written as the transpose of result, by AVX blocks of lanes × lanes
                // taps, the last tap (r² is odd) element by element.
                if (width == lanes && Avx.IsSupported)
                {
                    var target = dw.Slice(((dk + k) * channels + dc + c0) * taps, lanes * taps);
                    var rows = MemoryMarshal.Cast<Vector256<T>, T>(result);
                    int whole = taps / lanes * lanes;
                    for (int t0 = 0; t0 < whole; t0 += lanes) TransposeBlock(ref rows[t0 * lanes], lanes, ref target[t0], taps);
                    for (int tap = whole; tap < taps; tap++)
                    for (int l = 0; l < lanes; l++) target[l * taps + tap] = rows[tap * lanes + l];
                    continue;
                }
                for (int tap = 0; tap < taps; tap++) result[tap].CopyTo(lanesOut.Slice(tap * lanes, lanes));
                for (int l = 0; l < width; l++)
                {
                    var target = dw.Slice(((dk + k) * channels + dc + c0 + l) * taps, taps);
                    for (int tap = 0; tap < taps; tap++) target[tap] = lanesOut[tap * lanes + l];
                }
            }
        }
    }

    // Gᵀ times the α vectors v[from + i·step], into the r vectors o[to + p·outStep]. Gᵀ of F(2×2, 3×3):
    // (m0 + (m1 + m2)/2, (m1 − m2)/2, (m1 + m2)/2 + m3); of F(2×2, 5×5), with e = m1 + m2, o = m1 − m2, E = m3 + m4,
    // O = m3 − m4: (m0/4 − e/6 + E/24, −o/6 + O/12, −e/6 + E/6, −o/6 + O/3, −e/6 + 2E/3 + m5).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void GTranspose<T>(int r, ReadOnlySpan<Vector256<T>> v, int from, int step, Span<Vector256<T>> o, int to, int outStep)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var m0 = v[from]; var m1 = v[from + step]; var m2 = v[from + 2 * step]; var m3 = v[from + 3 * step];
        if (r == 3)
        {
            var half = Vector256.Create(T.CreateTruncating(0.5));
            var sum = (m1 + m2) * half;
            o[to] = m0 + sum;
            o[to + outStep] = (m1 - m2) * half;
            o[to + 2 * outStep] = sum + m3;
            return;
        }
        var m4 = v[from + 4 * step]; var m5 = v[from + 5 * step];
        var sixth = Vector256.Create(T.One / T.CreateTruncating(6));
        var e = (m1 + m2) * sixth; var odd = (m1 - m2) * sixth;
        var big = m3 + m4; var bigOdd = m3 - m4;
        o[to] = m0 * Vector256.Create(T.CreateTruncating(0.25)) - e + big * Vector256.Create(T.One / T.CreateTruncating(24));
        o[to + outStep] = bigOdd * Vector256.Create(T.One / T.CreateTruncating(12)) - odd;
        o[to + 2 * outStep] = big * sixth - e;
        o[to + 3 * outStep] = bigOdd * Vector256.Create(T.One / T.CreateTruncating(3)) - odd;
        o[to + 4 * outStep] = big * Vector256.Create(T.CreateTruncating(2) / T.CreateTruncating(3)) - e + m5;
    }

    // U_ξ = (G g Gᵀ)_ξ for every filter k and channel c, stored as α² matrices [K × C] (forward), or for the input
    // gradient from g = w[k, c] turned 180°, as α² matrices [C × K] (the roles of filters and channels swap); rows
    // [row0, row1) of each. A row is done WeightBlock columns at a time: their taps gathered tap-major into a block, then
    // transformed a vector of columns at once and stored as α² sequential streams; rows are disjoint, so the workers can
    // take ranges of them.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformWeights<T>(int r, ReadOnlySpan<T> weights, int filters, int channels, WeightLayout layout, int row0, int row1, Span<T> u)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        bool gradient = layout == WeightLayout.Rotated;
        int columns = gradient ? filters : channels, plane = Spread<T>(filters * channels), count = r * r, lanes = Vector256<T>.Count;
        Span<T> taps = stackalloc T[25 * WeightBlock];                 // tap t of the block's column j at t·WeightBlock + j
        Span<T> partial = stackalloc T[36 * Vector256<T>.Count];       // a last, partial vector of columns: ξ at ξ·lanes
        for (int row = row0; row < row1; row++)
        for (int col0 = 0; col0 < columns; col0 += WeightBlock)
        {
            int width = Math.Min(WeightBlock, columns - col0);
            for (int j = 0; j < WeightBlock; j++)
            {
                if (j >= width)
                {
                    for (int t = 0; t < count; t++) taps[t * WeightBlock + j] = T.Zero;
                    continue;
                }
                int k = gradient ? col0 + j : row, c = gradient ? row : col0 + j;
                var g = weights.Slice((k * channels + c) * count, count);
                for (int t = 0; t < count; t++) taps[t * WeightBlock + j] = gradient ? g[count - 1 - t] : g[t];
            }
            for (int j = 0; j < width; j += lanes)
            {
                int at = row * columns + col0 + j;
                bool whole = j + lanes <= width;
                var target = whole ? u[at..] : partial;
                int stride = whole ? plane : lanes;
                if (r == 3) TransformFilters3(taps, j, target, stride);
                else TransformFilters5(taps, j, target, stride);
                if (whole) continue;
                for (int xi = 0; xi < (r + 1) * (r + 1); xi++)
                {
                    partial.Slice(xi * lanes, width - j).CopyTo(u[(at + xi * plane)..]);
                }
            }
        }
    }

    /// <summary>Columns of U a weight transform gathers at once (a multiple of every vector's lane count).</summary>
    private const int WeightBlock = 32;

    /// <summary>Tap t of the vector of columns from j of a gathered block.</summary>
    private static Vector256<T> Tap<T>(ReadOnlySpan<T> taps, int t, int j) where T : unmanaged, IFloatingPointIeee754<T> =>
        Vector256.LoadUnsafe(ref MemoryMarshal.GetReference(taps), (nuint)(t * WeightBlock + j));

    // G g Gᵀ of a vector of 3×3 filters, tap t of lane i at taps[t·WeightBlock + j + i], into target[ξ·stride …], ξ = 0 … 15.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformFilters3<T>(ReadOnlySpan<T> taps, int j, Span<T> target, int stride) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var half = Vector256.Create(T.CreateTruncating(0.5));
        var (g0, g1, g2, g3, g4, g5, g6, g7, g8) = (Tap(taps, 0, j), Tap(taps, 1, j), Tap(taps, 2, j), Tap(taps, 3, j), Tap(taps, 4, j),
            Tap(taps, 5, j), Tap(taps, 6, j), Tap(taps, 7, j), Tap(taps, 8, j));
        // G g [4 × 3]: rows g_0, (g_0 + g_1 + g_2)/2, (g_0 − g_1 + g_2)/2, g_2 of the filter's rows g_i
        var b0 = (g0 + g3 + g6) * half; var b1 = (g1 + g4 + g7) * half; var b2 = (g2 + g5 + g8) * half;
        var c0 = (g0 - g3 + g6) * half; var c1 = (g1 - g4 + g7) * half; var c2 = (g2 - g5 + g8) * half;
        // (G g) Gᵀ [4 × 4]: the same combination of each row's three columns
        Row(target, 0, stride, g0, g1, g2, half);
        Row(target, 4, stride, b0, b1, b2, half);
        Row(target, 8, stride, c0, c1, c2, half);
        Row(target, 12, stride, g6, g7, g8, half);

        static void Row(Span<T> u, int xi, int stride, Vector256<T> x, Vector256<T> y, Vector256<T> z, Vector256<T> half)
        {
            ref T ur = ref MemoryMarshal.GetReference(u);
            x.StoreUnsafe(ref ur, (nuint)(xi * stride));
            ((x + y + z) * half).StoreUnsafe(ref ur, (nuint)((xi + 1) * stride));
            ((x - y + z) * half).StoreUnsafe(ref ur, (nuint)((xi + 2) * stride));
            z.StoreUnsafe(ref ur, (nuint)((xi + 3) * stride));
        }
    }

    // G g Gᵀ of a vector of 5×5 filters (taps as in TransformFilters3) into target[ξ·stride …], ξ = 0 … 35: G down each
    // column of g, then along each row of the result.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformFilters5<T>(ReadOnlySpan<T> taps, int j, Span<T> target, int stride) where T : unmanaged, IFloatingPointIeee754<T>
    {
        Span<Vector256<T>> columns = stackalloc Vector256<T>[30];   // G g [6 × 5] at 5i + m
        for (int m = 0; m < 5; m++)
        {
            var (t0, t1, t2, t3, t4, t5) = G5(Tap(taps, m, j), Tap(taps, 5 + m, j), Tap(taps, 10 + m, j), Tap(taps, 15 + m, j), Tap(taps, 20 + m, j));
            (columns[m], columns[5 + m], columns[10 + m], columns[15 + m], columns[20 + m], columns[25 + m]) = (t0, t1, t2, t3, t4, t5);
        }
        ref T ur = ref MemoryMarshal.GetReference(target);
        for (int i = 0; i < 6; i++)
        {
            var (t0, t1, t2, t3, t4, t5) = G5(columns[5 * i], columns[5 * i + 1], columns[5 * i + 2], columns[5 * i + 3], columns[5 * i + 4]);
            nuint at = (nuint)(6 * i * stride), st = (nuint)stride;
            t0.StoreUnsafe(ref ur, at); t1.StoreUnsafe(ref ur, at + st); t2.StoreUnsafe(ref ur, at + 2 * st);
            t3.StoreUnsafe(ref ur, at + 3 * st); t4.StoreUnsafe(ref ur, at + 4 * st); t5.StoreUnsafe(ref ur, at + 5 * st);
        }

        static (Vector256<T>, Vector256<T>, Vector256<T>, Vector256<T>, Vector256<T>, Vector256<T>) G5(
            Vector256<T> a, Vector256<T> b, Vector256<T> c, Vector256<T> d, Vector256<T> e)
        {
            var sixth = Vector256.Create(T.One / T.CreateTruncating(6));
            var twentyFourth = Vector256.Create(T.One / T.CreateTruncating(24));
            var four = Vector256.Create(T.CreateTruncating(4));
            var two = Vector256.Create(T.CreateTruncating(2));
            // (a + 2b + 4c + 8d + 16e)/24 and (a − 2b + 4c − 8d + 16e)/24, by Horner in powers of 4
            var even = a + four * (c + four * e);
            var odd = two * (b + four * d);
            return (a * Vector256.Create(T.CreateTruncating(0.25)), -(a + b + c + d + e) * sixth, -(a - b + c - d + e) * sixth,
                (even + odd) * twentyFourth, (even - odd) * twentyFourth, e);
        }
    }

    // The 16 (36) products of every band: bands in parallel, one per worker with its own V and M and the BLAS at one
    // thread. A single band on several workers goes phase by phase instead, each phase over all of them: the input
    // transform by channels, the products by position (each whole on one worker), the output transform by filters.
    private static unsafe void Run<T>(ParallelGemm gemm, WorkerPool workers, BufferPool pool, int r, ReadOnlySpan<T> x, int n, int channels,
        int h, int w, ReadOnlySpan<T> u, int filters, ReadOnlySpan<T> bias, int padTop, int padLeft, int outH, int outW, Span<T> y,
        bool mirrored = false, bool packed = false) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var plan = new Plan(r, n, channels, filters, outH, outW);
        var shape = new Sizes(channels, h, w, filters, padTop, padLeft, outH, outW, mirrored, packed);
        // Bands over the workers, each band whole on one; with fewer bands than workers (one band, or AlexNet's
        // 13×13 384 → 384 layer in two at batch 16 on 16 threads, which ran 37 ms there against 6 for its neighbours
        // in one band), band after band, each phase by phase over all of them. Either way each element's arithmetic is
        // one worker's, so the bits do not depend on the choice.
        bool parallel = workers.Threads > 1 && plan.Bands >= workers.Threads, phased = workers.Threads > 1 && plan.Bands < workers.Threads;
        int slots = parallel ? Math.Min(workers.Threads, plan.Bands) : 1;
        var job = Cache<BandJob<T>>.Rent();
        var buffers = job.Slots(slots);
        // A phased band's slot holds a scratch area per worker after the first's.
        long slotElements = plan.SlotElements + (phased ? (long)(workers.Threads - 1) * plan.ScratchElements : 0);
        for (int i = 0; i < slots; i++) buffers[i] = pool.Rent<T>(checked((int)slotElements), clear: false);
        try
        {
            fixed (T* px = x, pu = u, pb = bias, py = y)
            {
                job.Set(gemm, plan, shape, buffers, oneThread: parallel);
                job.Pin(px, x.Length, pu, u.Length, pb, bias.Length, py, y.Length);
                if (parallel)
                {
                    workers.For(plan.Bands, job);
                }
                else if (phased)
                {
                    for (int band = 0; band < plan.Bands; band++)
                    {
                        job.PhasedBand = band;
                        foreach (var phase in (ReadOnlySpan<BandPhase>)[BandPhase.Input, BandPhase.Products, BandPhase.Output])
                        {
                            job.Phase = phase;
                            workers.For(job.Items(phase), job);
                        }
                    }
                }
                else
                {
                    for (int band = 0; band < plan.Bands; band++) job.Run(band, 0);
                }
            }
        }
        finally
        {
            for (int i = 0; i < slots; i++)
            {
                pool.Return(buffers[i]);
                buffers[i] = null!;
            }
            job.Clear();
            Cache<BandJob<T>>.Return(job);
        }
    }

    // One band of tile rows [row0, row0 + rows) (rows counted over all images): transform its input patches into
    // V [α² × C × tiles], multiply M_ξ = U_ξ · V_ξ, transform M back into the band's outputs.
    private static void Band<T>(ParallelGemm gemm, in Plan plan, in Sizes s, int band, ReadOnlySpan<T> x, ReadOnlySpan<T> u,
        ReadOnlySpan<T> bias, Span<T> y, Span<T> slot, bool oneThread) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var l = BandBuffers(plan, s, band, slot, out var v, out var m);
        BandInput(plan, s, band, x, v, l, plan.Scratch(slot), 0, s.Channels);
        BandProducts(gemm, plan, s, band, u, v, m, l, 0, plan.Positions, oneThread);
        BandOutput(plan, s, band, m, l, bias, y, 0, s.Filters);
    }

    // The stride of a position's matrix in V, M or U: at least `elements`, and a whole odd number of 64-byte lines. A
    // tile's 16 (36) positions are written and read together, and strides a multiple of 4 KB (AlexNet's 384 channels ×
    // 400) put them all in one L1 set, and in whichever L2 sets the pages landed on: AlexNet's conv5 forward ran 10–11
    // or 13–15 ms from one process to the next, its input transform 2.0 or 3.0–3.5 ms.
    private static int Spread<T>(int elements) where T : unmanaged
    {
        int line = 64 / Unsafe.SizeOf<T>();
        return ((elements + line - 1) / line | 1) * line;
    }

    // V_ξ [C × tiles] and M_ξ [K × tiles] of a band, with rows ld = tiles + a vector apart: a row's last vector may run
    // past its end (into the slack) and be stored or loaded whole.
    private static BandLayout BandBuffers<T>(in Plan plan, in Sizes s, int band, Span<T> slot, out Span<T> v, out Span<T> m) where T : unmanaged
    {
        int ld = plan.Rows(band) * plan.TilesW + Vector256<T>.Count;
        var layout = new BandLayout(ld, Spread<T>(s.Channels * ld), Spread<T>(s.Filters * ld));
        v = slot[..(plan.Positions * layout.VStride)];
        m = slot.Slice(v.Length, plan.Positions * layout.MStride);
        return layout;
    }

    /// <summary>A band's V and M: rows Ld apart, position ξ's matrix at ξ·VStride in V and ξ·MStride in M (see <see cref="Spread{T}"/>).</summary>
    private readonly record struct BandLayout(int Ld, int VStride, int MStride);

    // The input transform of the band's tile rows, channels [c0, c1).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BandInput<T>(in Plan plan, in Sizes s, int band, ReadOnlySpan<T> x, Span<T> v, in BandLayout l, Span<T> scratch, int c0, int c1)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int row0 = band * plan.RowsPerBand, rows = plan.Rows(band);
        for (int r = 0; r < rows; r++)
        {
            int img = (row0 + r) / plan.TilesH, th = (row0 + r) % plan.TilesH;
            var xn = x.Slice(img * s.Channels * s.H * s.W, s.Channels * s.H * s.W);
            TransformInputRows(plan, xn, s, th, scratch, v, r * plan.TilesW, l, c0, c1);
        }
    }

    // M_ξ = U_ξ · V_ξ for positions [xi0, xi1).
    private static void BandProducts<T>(ParallelGemm gemm, in Plan plan, in Sizes s, int band, ReadOnlySpan<T> u, Span<T> v, Span<T> m, in BandLayout l,
        int xi0, int xi1, bool oneThread) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int tiles = plan.Rows(band) * plan.TilesW;
        for (int xi = xi0; xi < xi1; xi++)
        {
            if (s.Packed)
            {
                // U packed by filters (Winograd.Packed.cs); mirrored, position ξ reads U_π(ξ), whose rows are the
                // product's depth, repacked by channels panel by panel (counted with the product, as a BLAS's packing is).
                long start = System.Diagnostics.Stopwatch.GetTimestamp();
                var a = u.Slice((s.Mirrored ? Mirror[xi] : xi) * Spread<T>(s.Filters * s.Channels), s.Filters * s.Channels);
                PackedProduct(a, s.Filters, s.Channels, v.Slice(xi * l.VStride, s.Channels * l.Ld), l.Ld, tiles, m.Slice(xi * l.MStride, s.Filters * l.Ld), l.Ld,
                    byFilters: s.Mirrored);
                gemm.Count(s.Filters, tiles, s.Channels, start, oneThread);
                continue;
            }
            // Mirrored: U'_ξ [Filters × Channels] = (U_π(ξ) stored [Channels × Filters])ᵀ.
            int source = s.Mirrored ? Mirror[xi] : xi;
            gemm.Gemm(s.Mirrored, false, s.Filters, tiles, s.Channels, T.One, u.Slice(source * Spread<T>(s.Filters * s.Channels), s.Filters * s.Channels),
                s.Mirrored ? s.Filters : s.Channels, v.Slice(xi * l.VStride, s.Channels * l.Ld), l.Ld, T.Zero,
                m.Slice(xi * l.MStride, s.Filters * l.Ld), l.Ld, oneThread);
        }
    }

    // The output transform of the band's tile rows, filters [k0, k1).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BandOutput<T>(in Plan plan, in Sizes s, int band, ReadOnlySpan<T> m, in BandLayout l, ReadOnlySpan<T> bias, Span<T> y, int k0, int k1)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int row0 = band * plan.RowsPerBand, rows = plan.Rows(band);
        for (int r = 0; r < rows; r++)
        {
            int img = (row0 + r) / plan.TilesH, th = (row0 + r) % plan.TilesH;
            var yn = y.Slice(img * s.Filters * s.OutH * s.OutW, s.Filters * s.OutH * s.OutW);
            for (int k = k0; k < k1; k++)
            {
                T b = bias.IsEmpty ? T.Zero : bias[k];
                var plane = yn.Slice(k * s.OutH * s.OutW, s.OutH * s.OutW);
                TransformOutputRow(plan.R, m, k * l.Ld + r * plan.TilesW, l.MStride, plan.TilesW, th, s, b, !bias.IsEmpty, plane);
            }
        }
    }

    // V_ξ[c, tile] for every channel c of one image xn and the tiles of its tile row th, at v[c·ld + column + ξ·C·ld + t]:
    // the forward's input transform, and the weight gradient's.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformInputRows<T>(in Plan plan, ReadOnlySpan<T> xn, in Sizes s, int th, Span<T> scratch, Span<T> v,
        int column, in BandLayout l, int c0, int c1) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int plane = s.H * s.W;
        for (int c = c0; c < c1; c++)
        {
            if (plan.R == 3) TransformInputRow(xn.Slice(c * plane, plane), s, th, plan.TilesW, scratch, v, c * l.Ld + column, l.VStride);
            else TransformInputRow6(xn.Slice(c * plane, plane), s, th, plan.TilesW, scratch, v, c * l.Ld + column, l.VStride);
        }
    }

    // V_ξ[c, tile] = (Bᵀ d B)_ξ for the tiles of tile row th of one channel's plane; V_ξ of tile t at v[start + ξ·stride + t]
    // (whole vectors: the lanes past the row land where the next tile row or the slack will be written).
    // The four input rows under the tiles are first split into even and odd columns (zero in the padding), so that the
    // patch columns 2t, 2t + 1, 2t + 2, 2t + 3 of a run of tiles are four contiguous vectors.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformInputRow<T>(ReadOnlySpan<T> plane, in Sizes s, int th, int tilesW, Span<T> scratch, Span<T> v,
        int start, int stride) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int half = Half<T>(tilesW + 1 + Vector256<T>.Count);   // even or odd columns of one row, with a vector of zeros to spare
        SplitRows(plane, s, th, 4, half, scratch);
        ref T sr = ref MemoryMarshal.GetReference(scratch);
        ref T vr = ref MemoryMarshal.GetReference(v);
        nuint h = (nuint)half, st = (nuint)stride;
        for (int t = 0; t < tilesW; t += Vector256<T>.Count)
        {
            // d[r, j] = column 2t + j of input row r, for Count tiles at once
            nuint i = (nuint)t;
            var e0 = Vector256.LoadUnsafe(ref sr, i); var o0 = Vector256.LoadUnsafe(ref sr, h + i);
            var f0 = Vector256.LoadUnsafe(ref sr, i + 1); var p0 = Vector256.LoadUnsafe(ref sr, h + i + 1);
            var e1 = Vector256.LoadUnsafe(ref sr, 2 * h + i); var o1 = Vector256.LoadUnsafe(ref sr, 3 * h + i);
            var f1 = Vector256.LoadUnsafe(ref sr, 2 * h + i + 1); var p1 = Vector256.LoadUnsafe(ref sr, 3 * h + i + 1);
            var e2 = Vector256.LoadUnsafe(ref sr, 4 * h + i); var o2 = Vector256.LoadUnsafe(ref sr, 5 * h + i);
            var f2 = Vector256.LoadUnsafe(ref sr, 4 * h + i + 1); var p2 = Vector256.LoadUnsafe(ref sr, 5 * h + i + 1);
            var e3 = Vector256.LoadUnsafe(ref sr, 6 * h + i); var o3 = Vector256.LoadUnsafe(ref sr, 7 * h + i);
            var f3 = Vector256.LoadUnsafe(ref sr, 6 * h + i + 1); var p3 = Vector256.LoadUnsafe(ref sr, 7 * h + i + 1);
            // Bᵀ d: rows 0 − 2, 1 + 2, 2 − 1, 1 − 3 (each a row of four columns)
            var a0 = e0 - e2; var a1 = o0 - o2; var a2 = f0 - f2; var a3 = p0 - p2;
            var b0 = e1 + e2; var b1 = o1 + o2; var b2 = f1 + f2; var b3 = p1 + p2;
            var c0 = e2 - e1; var c1 = o2 - o1; var c2 = f2 - f1; var c3 = p2 - p1;
            var d0 = e1 - e3; var d1 = o1 - o3; var d2 = f1 - f3; var d3 = p1 - p3;
            // (Bᵀ d) B: columns 0 − 2, 1 + 2, 2 − 1, 1 − 3 of each row
            nuint at = (nuint)start + i;
            (a0 - a2).StoreUnsafe(ref vr, at); (a1 + a2).StoreUnsafe(ref vr, at + st);
            (a2 - a1).StoreUnsafe(ref vr, at + 2 * st); (a1 - a3).StoreUnsafe(ref vr, at + 3 * st);
            (b0 - b2).StoreUnsafe(ref vr, at + 4 * st); (b1 + b2).StoreUnsafe(ref vr, at + 5 * st);
            (b2 - b1).StoreUnsafe(ref vr, at + 6 * st); (b1 - b3).StoreUnsafe(ref vr, at + 7 * st);
            (c0 - c2).StoreUnsafe(ref vr, at + 8 * st); (c1 + c2).StoreUnsafe(ref vr, at + 9 * st);
            (c2 - c1).StoreUnsafe(ref vr, at + 10 * st); (c1 - c3).StoreUnsafe(ref vr, at + 11 * st);
            (d0 - d2).StoreUnsafe(ref vr, at + 12 * st); (d1 + d2).StoreUnsafe(ref vr, at + 13 * st);
            (d2 - d1).StoreUnsafe(ref vr, at + 14 * st); (d1 - d3).StoreUnsafe(ref vr, at + 15 * st);
        }
    }

    // V_ξ[c, tile] = (Bᵀ d B)_ξ, ξ = 6i + j, for F(2×2, 5×5): as TransformInputRow, with the six input rows under the
    // tiles split into even and odd columns, so that patch columns 2t … 2t + 5 are six contiguous vectors. Bᵀ is applied
    // along each row first (d B, kept in rowsB), then down each column.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformInputRow6<T>(ReadOnlySpan<T> plane, in Sizes s, int th, int tilesW, Span<T> scratch, Span<T> v,
        int start, int stride) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int half = Half<T>(tilesW + 2 + Vector256<T>.Count);
        SplitRows(plane, s, th, 6, half, scratch);
        ref T sr = ref MemoryMarshal.GetReference(scratch);
        ref T vr = ref MemoryMarshal.GetReference(v);
        nuint h = (nuint)half, st = (nuint)stride;
        Span<Vector256<T>> rowsB = stackalloc Vector256<T>[36];   // (d B)[r, j] at 6r + j
        for (int t = 0; t < tilesW; t += Vector256<T>.Count)
        {
            nuint i = (nuint)t;
            for (int r = 0; r < 6; r++)
            {
                nuint e = 2 * (nuint)r * h + i, o = e + h;
                BtRow(Vector256.LoadUnsafe(ref sr, e), Vector256.LoadUnsafe(ref sr, o), Vector256.LoadUnsafe(ref sr, e + 1),
                    Vector256.LoadUnsafe(ref sr, o + 1), Vector256.LoadUnsafe(ref sr, e + 2), Vector256.LoadUnsafe(ref sr, o + 2),
                    rowsB.Slice(6 * r, 6), 1);
            }
            for (int j = 0; j < 6; j++)
            {
                BtColumn(rowsB[j], rowsB[6 + j], rowsB[12 + j], rowsB[18 + j], rowsB[24 + j], rowsB[30 + j], ref vr,
                    (nuint)start + i + (nuint)j * st, 6 * st);
            }
        }
    }

    // Bᵀ along a row of six input vectors, into t[0], t[step], …, t[5·step].
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void BtRow<T>(Vector256<T> d0, Vector256<T> d1, Vector256<T> d2, Vector256<T> d3, Vector256<T> d4, Vector256<T> d5,
        Span<Vector256<T>> t, int step) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (t0, t1, t2, t3, t4, t5) = Bt(d0, d1, d2, d3, d4, d5);
        t[0] = t0; t[step] = t1; t[2 * step] = t2; t[3 * step] = t3; t[4 * step] = t4; t[5 * step] = t5;
    }

    // Bᵀ down a column of six vectors, stored at v[at], v[at + step], …, v[at + 5·step].
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void BtColumn<T>(Vector256<T> d0, Vector256<T> d1, Vector256<T> d2, Vector256<T> d3, Vector256<T> d4, Vector256<T> d5,
        ref T v, nuint at, nuint step) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (t0, t1, t2, t3, t4, t5) = Bt(d0, d1, d2, d3, d4, d5);
        t0.StoreUnsafe(ref v, at); t1.StoreUnsafe(ref v, at + step); t2.StoreUnsafe(ref v, at + 2 * step);
        t3.StoreUnsafe(ref v, at + 3 * step); t4.StoreUnsafe(ref v, at + 4 * step); t5.StoreUnsafe(ref v, at + 5 * step);
    }

    // Bᵀ d for one column d of six: 4d0 − 5d2 + d4, −4(d1 + d2) + d3 + d4, 4(d1 − d2) − d3 + d4, 2(d3 − d1) − d2 + d4,
    // 2(d1 − d3) − d2 + d4, 4d1 − 5d3 + d5.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<T>, Vector256<T>, Vector256<T>, Vector256<T>, Vector256<T>, Vector256<T>) Bt<T>(
        Vector256<T> d0, Vector256<T> d1, Vector256<T> d2, Vector256<T> d3, Vector256<T> d4, Vector256<T> d5)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var two = Vector256.Create(T.CreateTruncating(2));
        var four = Vector256.Create(T.CreateTruncating(4));
        var five = Vector256.Create(T.CreateTruncating(5));
        var d34 = d3 + d4;
        var d4m2 = d4 - d2;
        var twice = two * (d1 - d3);
        return (four * d0 - five * d2 + d4, d34 - four * (d1 + d2), four * (d1 - d2) - d3 + d4,
            d4m2 - twice, d4m2 + twice, four * d1 - five * d3 + d5);
    }

    // The input rows 2·th − P_top + r, r < rows, under tile row th, each split into even and odd columns of half
    // elements at scratch[2r·half] and scratch[(2r + 1)·half] (zeros for rows in the padding). Where Vector512 is
    // accelerated, a row is copied into a zero-bordered line after the halves (line[2q] = even[q], line[2q + 1] =
    // odd[q]) and unzipped a vector pair at a time: AlexNet's 13×13 planes spent about a third of the weight
    // gradient's time in the scalar split.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SplitRows<T>(ReadOnlySpan<T> plane, in Sizes s, int th, int rows, int half, Span<T> scratch)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        bool vector = Vector512.IsHardwareAccelerated && s.PadLeft + s.W <= 2 * half;
        var line = vector ? scratch.Slice(2 * rows * half, 2 * half) : default;
        line.Clear();
        for (int r = 0; r < rows; r++)
        {
            var even = scratch.Slice(2 * r * half, half);
            var odd = scratch.Slice((2 * r + 1) * half, half);
            int ih = 2 * th - s.PadTop + r;
            if ((uint)ih >= (uint)s.H)
            {
                even.Clear();
                odd.Clear();
                continue;
            }
            var row = plane.Slice(ih * s.W, s.W);
            if (!vector)
            {
                Deinterleave(row, s.PadLeft, even, odd);
                continue;
            }
            row.CopyTo(line[s.PadLeft..]);
            ref T lr = ref MemoryMarshal.GetReference(line);
            ref T er = ref MemoryMarshal.GetReference(even);
            ref T or = ref MemoryMarshal.GetReference(odd);
            for (int q = 0; q < half; q += Vector256<T>.Count)
            {
                var (e, o) = Unzip(Vector512.LoadUnsafe(ref lr, (nuint)(2 * q)));
                e.StoreUnsafe(ref er, (nuint)q);
                o.StoreUnsafe(ref or, (nuint)q);
            }
        }
    }

    /// <summary>Elements of a split row's even or odd half: at least <paramref name="needed"/>, a whole number of vectors.</summary>
    private static int Half<T>(int needed) where T : unmanaged =>
        (needed + Vector256<T>.Count - 1) / Vector256<T>.Count * Vector256<T>.Count;

    // (v[0], v[2], …) and (v[1], v[3], …) of a vector pair.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<T> Even, Vector256<T> Odd) Unzip<T>(Vector512<T> v) where T : unmanaged
    {
        if (typeof(T) == typeof(float))
        {
            var f = Vector512.Shuffle(v.AsSingle(), Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15)).As<float, T>();
            return (f.GetLower(), f.GetUpper());
        }
        var d = Vector512.Shuffle(v.AsDouble(), Vector512.Create(0L, 2, 4, 6, 1, 3, 5, 7)).As<double, T>();
        return (d.GetLower(), d.GetUpper());
    }

    // (even[0], odd[0], even[1], odd[1], …): Unzip's inverse.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> Zip<T>(Vector256<T> even, Vector256<T> odd) where T : unmanaged
    {
        var v = Vector512.Create(even, odd);
        if (typeof(T) == typeof(float))
        {
            return Vector512.Shuffle(v.AsSingle(), Vector512.Create(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15)).As<float, T>();
        }
        return Vector512.Shuffle(v.AsDouble(), Vector512.Create(0L, 4, 1, 5, 2, 6, 3, 7)).As<double, T>();
    }

    // even[q] = line[2q − pad], odd[q] = line[2q + 1 − pad], zero outside the line.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Deinterleave<T>(ReadOnlySpan<T> line, int pad, Span<T> even, Span<T> odd) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int width = line.Length;
        // q in [lo, hi): both 2q − pad and 2q + 1 − pad inside the line
        int lo = (pad + 1) / 2, hi = Math.Max(lo, Math.Min(even.Length, (width + pad - 1) / 2));
        for (int q = 0; q < lo; q++)
        {
            int iw = 2 * q - pad;
            even[q] = (uint)iw < (uint)width ? line[iw] : T.Zero;
            odd[q] = (uint)(iw + 1) < (uint)width ? line[iw + 1] : T.Zero;
        }
        var inner = line[(2 * lo - pad)..];
        for (int q = lo; q < hi; q++)
        {
            int j = 2 * (q - lo);
            even[q] = inner[j];
            odd[q] = inner[j + 1];
        }
        for (int q = hi; q < even.Length; q++)
        {
            int iw = 2 * q - pad;
            even[q] = (uint)iw < (uint)width ? line[iw] : T.Zero;
            odd[q] = (uint)(iw + 1) < (uint)width ? line[iw + 1] : T.Zero;
        }
    }

    // y[2th + i, 2t + j] = (Aᵀ m A)[i, j] + b for the tiles of tile row th of one filter of an r×r convolution; m_ξ of
    // tile t at m[start + ξ·stride + t] (whole vectors are loaded: the lanes past the row are not stored).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformOutputRow<T>(int r, ReadOnlySpan<T> m, int start, int stride, int tilesW, int th, in Sizes s,
        T bias, bool hasBias, Span<T> plane) where T : unmanaged, IFloatingPointIeee754<T>
    {
        ref T mr = ref MemoryMarshal.GetReference(m);
        int n = Vector256<T>.Count;
        Span<T> lanes = stackalloc T[4 * Vector256<T>.Count];
        Span<Vector256<T>> sums = stackalloc Vector256<T>[12];
        var b = Vector256.Create(bias);
        int oh = 2 * th;
        var top = plane.Slice(oh * s.OutW, s.OutW);
        var bottom = oh + 1 < s.OutH ? plane.Slice((oh + 1) * s.OutW, s.OutW) : default;
        nuint st = (nuint)stride;
        for (int t = 0; t < tilesW; t += n)
        {
            nuint at = (nuint)(start + t);
            var (y00, y01, y10, y11) = r == 3 ? Output3(ref mr, at, st) : Output5(ref mr, at, st, sums);
            if (hasBias)
            {
                y00 += b; y01 += b; y10 += b; y11 += b;
            }
            StoreTiles(y00, y01, y10, y11, lanes, t, tilesW, s.OutW, top, bottom);
        }
    }

    // Aᵀ m A of F(2×2, 3×3) for a vector of tiles, m_ξ at m[at + ξ·st].
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<T>, Vector256<T>, Vector256<T>, Vector256<T>) Output3<T>(ref T mr, nuint at, nuint st)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var m0 = Vector256.LoadUnsafe(ref mr, at); var m1 = Vector256.LoadUnsafe(ref mr, at + st);
        var m2 = Vector256.LoadUnsafe(ref mr, at + 2 * st); var m3 = Vector256.LoadUnsafe(ref mr, at + 3 * st);
        var m4 = Vector256.LoadUnsafe(ref mr, at + 4 * st); var m5 = Vector256.LoadUnsafe(ref mr, at + 5 * st);
        var m6 = Vector256.LoadUnsafe(ref mr, at + 6 * st); var m7 = Vector256.LoadUnsafe(ref mr, at + 7 * st);
        var m8 = Vector256.LoadUnsafe(ref mr, at + 8 * st); var m9 = Vector256.LoadUnsafe(ref mr, at + 9 * st);
        var m10 = Vector256.LoadUnsafe(ref mr, at + 10 * st); var m11 = Vector256.LoadUnsafe(ref mr, at + 11 * st);
        var m12 = Vector256.LoadUnsafe(ref mr, at + 12 * st); var m13 = Vector256.LoadUnsafe(ref mr, at + 13 * st);
        var m14 = Vector256.LoadUnsafe(ref mr, at + 14 * st); var m15 = Vector256.LoadUnsafe(ref mr, at + 15 * st);
        // Aᵀ m: rows 0 + 1 + 2 and 1 − 2 − 3
        var s0 = m0 + m4 + m8; var s1 = m1 + m5 + m9; var s2 = m2 + m6 + m10; var s3 = m3 + m7 + m11;
        var r0 = m4 - m8 - m12; var r1 = m5 - m9 - m13; var r2 = m6 - m10 - m14; var r3 = m7 - m11 - m15;
        // (Aᵀ m) A: columns 0 + 1 + 2 and 1 − 2 − 3
        return (s0 + s1 + s2, s1 - s2 - s3, r0 + r1 + r2, r1 - r2 - r3);
    }

    // Aᵀ m A of F(2×2, 5×5) for a vector of tiles, m_ξ (ξ = 6i + j) at m[at + ξ·st]; sums holds Aᵀ m, row 0 at j and
    // row 1 at 6 + j.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<T>, Vector256<T>, Vector256<T>, Vector256<T>) Output5<T>(ref T mr, nuint at, nuint st, Span<Vector256<T>> sums)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var two = Vector256.Create(T.CreateTruncating(2));
        for (int j = 0; j < 6; j++)
        {
            nuint col = at + (nuint)j * st;
            var m0 = Vector256.LoadUnsafe(ref mr, col); var m1 = Vector256.LoadUnsafe(ref mr, col + 6 * st);
            var m2 = Vector256.LoadUnsafe(ref mr, col + 12 * st); var m3 = Vector256.LoadUnsafe(ref mr, col + 18 * st);
            var m4 = Vector256.LoadUnsafe(ref mr, col + 24 * st); var m5 = Vector256.LoadUnsafe(ref mr, col + 30 * st);
            sums[j] = m0 + m1 + m2 + m3 + m4;
            sums[6 + j] = m1 - m2 + two * (m3 - m4) + m5;
        }
        // (Aᵀ m) A: columns 0 + 1 + 2 + 3 + 4 and 1 − 2 + 2·(3 − 4) + 5 of each row
        return (sums[0] + sums[1] + sums[2] + sums[3] + sums[4], sums[1] - sums[2] + two * (sums[3] - sums[4]) + sums[5],
            sums[6] + sums[7] + sums[8] + sums[9] + sums[10], sums[7] - sums[8] + two * (sums[9] - sums[10]) + sums[11]);
    }

    // Interleaves a vector of tiles' 2×2 outputs into the two output rows: columns 2t, 2t + 1 of each tile (the last
    // tile's second column only where the output width is even; the second row only where there is one).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void StoreTiles<T>(Vector256<T> y00, Vector256<T> y01, Vector256<T> y10, Vector256<T> y11, Span<T> lanes,
        int t, int tilesW, int outW, Span<T> top, Span<T> bottom) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = Vector256<T>.Count;
        ref T lr = ref MemoryMarshal.GetReference(lanes);
        int count = Math.Min(n, tilesW - t), ow = 2 * t, pairs = Math.Min(count, (outW - ow) / 2);
        if (Vector512.IsHardwareAccelerated)
        {
            // Each row's tiles interleaved in registers, then copied whole: the row's 2·count outputs, or one fewer
            // where the width is odd (2·count ≤ outW − ow + 1, tilesW being ⌈outW / 2⌉).
            Zip(y00, y01).StoreUnsafe(ref lr, 0);
            Zip(y10, y11).StoreUnsafe(ref lr, (nuint)(2 * n));
            int width = Math.Min(2 * count, outW - ow);
            lanes[..width].CopyTo(top[ow..]);
            if (!bottom.IsEmpty) lanes.Slice(2 * n, width).CopyTo(bottom[ow..]);
            return;
        }
        y00.StoreUnsafe(ref lr, 0); y01.StoreUnsafe(ref lr, (nuint)n);
        y10.StoreUnsafe(ref lr, (nuint)(2 * n)); y11.StoreUnsafe(ref lr, (nuint)(3 * n));
        for (int i = 0; i < pairs; i++)
        {
            top[ow + 2 * i] = lanes[i];
            top[ow + 2 * i + 1] = lanes[n + i];
        }
        if (pairs < count) top[ow + 2 * pairs] = lanes[pairs];
        if (bottom.IsEmpty) return;
        for (int i = 0; i < pairs; i++)
        {
            bottom[ow + 2 * i] = lanes[2 * n + i];
            bottom[ow + 2 * i + 1] = lanes[3 * n + i];
        }
        if (pairs < count) bottom[ow + 2 * pairs] = lanes[2 * n + pairs];
    }

    /// <summary>
    /// How a weight transform lays out each U_ξ: [K × C] (Rows), from w turned 180° as [C × K] (Rotated), packed by
    /// blocks of filters for <see cref="PackedProduct{T}"/> (PackedFilters; the input gradient repacks it by channels),
    /// or from w turned 180° packed by blocks of channels (PackedRotated: a 5×5 input gradient's products).
    /// Also the kind under which a kept transform is offered beside the weights.
    /// </summary>
    private enum WeightLayout { Rows, Rotated, PackedFilters, PackedRotated }

    /// <summary>The weight transform over the workers, each a fixed range of U's rows or packed blocks (on a loaded pool, inline).</summary>
    private sealed unsafe class WeightJob<T> : IParallelWork where T : unmanaged, IFloatingPointIeee754<T>
    {
        private T* _weights, _u;
        private int _r, _weightsLength, _uLength, _filters, _channels, _rows, _items;
        private WeightLayout _layout;

        public static void Run(WorkerPool workers, int r, ReadOnlySpan<T> weights, int filters, int channels, WeightLayout layout, Span<T> u)
        {
            int rows = layout switch
            {
                WeightLayout.Rotated => channels,
                WeightLayout.PackedFilters => filters / PackRows<T>(),
                WeightLayout.PackedRotated => channels / PackRows<T>() * filters,     // (block of channels, filter) pairs
                _ => filters,
            };
            var job = Cache<WeightJob<T>>.Rent();
            fixed (T* pw = weights, pu = u)
            {
                try
                {
                    job._weights = pw;
                    job._u = pu;
                    (job._r, job._weightsLength, job._uLength, job._filters, job._channels, job._layout, job._rows) =
                        (r, weights.Length, u.Length, filters, channels, layout, rows);
                    // Small transforms (under ~64K filters' worth) stay on the caller.
                    job._items = (long)filters * channels < 1 << 16 ? 1 : Math.Min(rows, 4 * workers.Threads);
                    workers.For(job._items, job);
                }
                finally
                {
                    job._weights = job._u = null;
                    Cache<WeightJob<T>>.Return(job);
                }
            }
        }

        public void Run(int index, int worker)
        {
            int row0 = (int)((long)index * _rows / _items), row1 = (int)((long)(index + 1) * _rows / _items);
            var weights = new ReadOnlySpan<T>(_weights, _weightsLength);
            var u = new Span<T>(_u, _uLength);
            if (_layout == WeightLayout.PackedFilters) TransformWeightsByFilters(weights, _filters, _channels, row0, row1, u);
            else if (_layout == WeightLayout.PackedRotated) TransformRotatedByChannels(weights, _filters, _channels, row0, row1, u);
            else TransformWeights(_r, weights, _filters, _channels, _layout, row0, row1, u);
        }
    }

    /// <summary>The slots of a weight-gradient call on the workers that take them; operands pinned by the caller.</summary>
    private sealed unsafe class WeightsJob<T> : IParallelWork where T : unmanaged, IFloatingPointIeee754<T>
    {
        private ParallelGemm? _gemm;
        private int _kernel;
        private long _work;
        private Sizes _sizes;
        private T[][] _slots = [];
        private SlotArrays<T> _slotArrays;
        private T* _x, _dy;
        private int _n, _slotCount, _xLength, _dyLength, _dwLength, _dbLength;

        /// <summary>An array of <paramref name="slots"/> entries for the slots' buffers, kept between calls.</summary>
        public T[][] Slots(int slots) => _slotArrays.Get(slots);

        public void Set(ParallelGemm gemm, int kernel, long work, in Sizes sizes, T[][] slots, int n, int slotCount, T* x, int xLength,
            T* dy, int dyLength, int dwLength, int dbLength)
        {
            (_gemm, _kernel, _work, _sizes, _slots, _n, _slotCount) = (gemm, kernel, work, sizes, slots, n, slotCount);
            _x = x; _dy = dy;
            (_xLength, _dyLength, _dwLength, _dbLength) = (xLength, dyLength, dwLength, dbLength);
        }

        public void Clear()
        {
            _gemm = null;
            _x = _dy = null;
        }

        public void Run(int index, int worker) =>
            SlotWeights(_gemm!, _kernel, _work, _sizes, index, _slotCount, _n, new ReadOnlySpan<T>(_x, _xLength), new ReadOnlySpan<T>(_dy, _dyLength),
                _slots[index], _dwLength, _dbLength, oneThread: _slotCount > 1);
    }

    /// <summary>
    /// The sizes of one direction: Channels in, Filters out, top/left padding, output OutH × OutW. Mirrored: U holds the
    /// forward's transform of a 3×3 kernel, [Channels × Filters] at each position, for the input gradient's products
    /// (see <see cref="Mirror"/>).
    /// </summary>
    private readonly record struct Sizes(int Channels, int H, int W, int Filters, int PadTop, int PadLeft, int OutH, int OutW,
        bool Mirrored = false, bool Packed = false);

    /// <summary>
    /// F(2×2, 3×3)'s G with its columns reversed is G with rows 0 and 3 swapped (points 0, 1, −1, ∞: 1/a maps them onto
    /// themselves), so the transform of w turned 180° is the forward's, rows and columns 0 and 3 swapped:
    /// U'_(i, j)[c, k] = U_(p(i), p(j))[k, c] with p = (3, 1, 2, 0). Position ξ = 4i + j reads position Mirror[ξ].
    /// (F(2×2, 5×5)'s points ±2 map onto ±½: its input gradient transforms the turned kernel.)
    /// </summary>
    private static ReadOnlySpan<int> Mirror => [15, 13, 14, 12, 7, 5, 6, 4, 11, 9, 10, 8, 3, 1, 2, 0];

    /// <summary>A band's work in turn (a single band on several workers): <see cref="All"/> runs a whole band per item.</summary>
    private enum BandPhase { All, Input, Products, Output }

    /// <summary>
    /// The bands of one call on the worker that takes each, or one phase of a single band over all workers; operands
    /// pinned by the caller.
    /// </summary>
    private sealed unsafe class BandJob<T> : IParallelWork where T : unmanaged, IFloatingPointIeee754<T>
    {
        private ParallelGemm? _gemm;
        private Plan _plan;
        private Sizes _sizes;
        private T[][] _slots = [];
        private SlotArrays<T> _slotArrays;
        private bool _oneThread;
        private T* _x, _u, _b, _y;
        private int _xLength, _uLength, _bLength, _yLength;

        /// <summary>An array of <paramref name="slots"/> entries for the workers' buffers, kept between calls.</summary>
        public T[][] Slots(int slots) => _slotArrays.Get(slots);

        public void Set(ParallelGemm gemm, in Plan plan, in Sizes sizes, T[][] slots, bool oneThread)
        {
            (_gemm, _plan, _sizes, _slots, _oneThread) = (gemm, plan, sizes, slots, oneThread);
        }

        public void Pin(T* x, int xLength, T* u, int uLength, T* b, int bLength, T* y, int yLength)
        {
            _x = x; _u = u; _b = b; _y = y;
            (_xLength, _uLength, _bLength, _yLength) = (xLength, uLength, bLength, yLength);
        }

        public BandPhase Phase { get; set; }

        /// <summary>The band that a phase (other than <see cref="BandPhase.All"/>) works on.</summary>
        public int PhasedBand { get; set; }

        /// <summary>Items of a phase of one band: chunks of channels, positions, chunks of filters.</summary>
        public int Items(BandPhase phase) => phase switch
        {
            BandPhase.Input => (_sizes.Channels + PhaseChunk - 1) / PhaseChunk,
            BandPhase.Products => _plan.Positions,
            BandPhase.Output => (_sizes.Filters + PhaseChunk - 1) / PhaseChunk,
            _ => _plan.Bands,
        };

        public void Clear()
        {
            _gemm = null;
            _x = _u = _b = _y = null;
            Phase = BandPhase.All;
            PhasedBand = 0;
        }

        public void Run(int index, int worker)
        {
            var x = new ReadOnlySpan<T>(_x, _xLength);
            var u = new ReadOnlySpan<T>(_u, _uLength);
            var bias = new ReadOnlySpan<T>(_b, _bLength);
            var y = new Span<T>(_y, _yLength);
            if (Phase == BandPhase.All)
            {
                Band(_gemm!, _plan, _sizes, index, x, u, bias, y, _slots[worker], _oneThread);
                return;
            }
            // One band in one slot, each worker with its own scratch in it.
            var slot = _slots[0];
            int band = PhasedBand;
            var l = BandBuffers(_plan, _sizes, band, slot.AsSpan(), out var v, out var m);
            int lo = index * PhaseChunk;
            switch (Phase)
            {
                case BandPhase.Input:
                    var scratch = _plan.Scratch(slot.AsSpan(), worker);
                    BandInput(_plan, _sizes, band, x, v, l, scratch, lo, Math.Min(_sizes.Channels, lo + PhaseChunk));
                    break;
                case BandPhase.Products:
                    BandProducts(_gemm!, _plan, _sizes, band, u, v, m, l, index, index + 1, oneThread: true);
                    break;
                default:
                    BandOutput(_plan, _sizes, band, m, l, bias, y, lo, Math.Min(_sizes.Filters, lo + PhaseChunk));
                    break;
            }
        }
    }

    /// <summary>Channels (input transforms) or filters (dy's, the output's and dw's transforms) per item of a phase.</summary>
    private const int PhaseChunk = 16;

    private enum WeightsPhase { Input, Gradient, Products, Output, Pack, PackedProducts }

    /// <summary>Blocks of filters (of <see cref="PackColumns"/>) an item of <see cref="WeightsPhase.PackedProducts"/> takes.</summary>
    private const int PackedFilterBlocksPerItem = 4;

    /// <summary>One phase of <see cref="PhasedWeights{T}"/> over the workers; operands pinned by the caller.</summary>
    private sealed unsafe class PhasedWeightsJob<T> : IParallelWork where T : unmanaged, IFloatingPointIeee754<T>
    {
        private ParallelGemm? _gemm;
        private Plan _plan;
        private Sizes _sizes;
        private bool _fused;
        private T[]? _slot, _m;
        private T* _x, _dy, _dw, _db;
        private int _xLength, _dyLength, _dwLength, _dbLength;

        public WeightsPhase Phase { get; set; }

        public void Set(ParallelGemm gemm, in Plan plan, in Sizes sizes, bool fused, T[] slot, T[] m, T* x, int xLength, T* dy, int dyLength,
            T* dw, int dwLength, T* db, int dbLength)
        {
            (_gemm, _plan, _sizes, _fused, _slot, _m) = (gemm, plan, sizes, fused, slot, m);
            _x = x; _dy = dy; _dw = dw; _db = db;
            (_xLength, _dyLength, _dwLength, _dbLength) = (xLength, dyLength, dwLength, dbLength);
        }

        public void Clear()
        {
            _gemm = null;
            _slot = _m = null;
            _x = _dy = _dw = _db = null;
        }

        /// <summary>
        /// Items of a phase: chunks of channels (Input), chunks of filters (Gradient, Output), positions (Products,
        /// Pack), blocks of channels by groups of filter blocks (PackedProducts).
        /// </summary>
        public int Items(WeightsPhase phase) => phase switch
        {
            WeightsPhase.Input => (_sizes.Channels + PhaseChunk - 1) / PhaseChunk,
            WeightsPhase.Products or WeightsPhase.Pack => _plan.Positions,
            WeightsPhase.PackedProducts => _sizes.Channels / PackRows<T>() * FilterGroups,
            _ => (_sizes.Filters + PhaseChunk - 1) / PhaseChunk,
        };

        private int FilterGroups => (FilterBlocks(_sizes.Filters) + PackedFilterBlocksPerItem - 1) / PackedFilterBlocksPerItem;

        private int Tiles => _plan.TileRows * _plan.TilesW;

        public void Run(int index, int worker)
        {
            var s = _sizes;
            var l = BandBuffers(_plan, s, 0, _slot.AsSpan(), out var v, out var udy);   // udy: the transformed dy, in the forward's M
            var scratch = _plan.Scratch(_slot.AsSpan(), worker);
            int lo = index * PhaseChunk, outPlane = s.OutH * s.OutW;
            var dy = new ReadOnlySpan<T>(_dy, _dyLength);
            switch (Phase)
            {
                case WeightsPhase.Input:
                    BandInput(_plan, s, 0, new ReadOnlySpan<T>(_x, _xLength), v, l, scratch, lo, Math.Min(s.Channels, lo + PhaseChunk));
                    break;
                case WeightsPhase.Gradient:
                {
                    var dySizes = s with { H = s.OutH, W = s.OutW, PadTop = 0, PadLeft = 0 };
                    int hi = Math.Min(s.Filters, lo + PhaseChunk);
                    // Tile row by tile row, so that a row's whole last vector, running into the next row's place, is overwritten after.
                    for (int r = 0; r < _plan.TileRows; r++)
                    {
                        int img = r / _plan.TilesH, th = r % _plan.TilesH;
                        var dyn = dy.Slice(img * s.Filters * outPlane, s.Filters * outPlane);
                        for (int k = lo; k < hi; k++)
                        {
                            TransformGradientRow(_plan.R, dyn.Slice(k * outPlane, outPlane), dySizes, th, _plan.TilesW, scratch, udy,
                                k * l.Ld + r * _plan.TilesW, l.MStride);
                        }
                    }
                    var db = new Span<T>(_db, _dbLength);
                    for (int k = lo; k < hi; k++)
                    {
                        var sum = T.Zero;
                        for (int img = 0; img < _plan.TileRows / _plan.TilesH; img++) sum += TensorPrimitives.Sum(dy.Slice((img * s.Filters + k) * outPlane, outPlane));
                        db[k] = sum;
                    }
                    break;
                }
                case WeightsPhase.Products:
                {
                    int kc = Spread<T>(s.Filters * s.Channels);
                    if (PacksWeights<T>(s.Channels))
                    {
                        long start = System.Diagnostics.Stopwatch.GetTimestamp();
                        PackedProductTransposed(udy.Slice(index * l.MStride, s.Filters * l.Ld), s.Filters, l.Ld, v.Slice(index * l.VStride, s.Channels * l.Ld),
                            s.Channels, l.Ld, Tiles, _m.AsSpan(index * kc, s.Filters * s.Channels), s.Channels);
                        _gemm!.Count(s.Filters, s.Channels, Tiles, start, oneThread: true);
                        break;
                    }
                    _gemm!.Gemm(false, true, s.Filters, s.Channels, Tiles, T.One, udy.Slice(index * l.MStride, s.Filters * l.Ld), l.Ld,
                        v.Slice(index * l.VStride, s.Channels * l.Ld), l.Ld, T.Zero, _m.AsSpan(index * kc, s.Filters * s.Channels), s.Channels,
                        oneThread: true);
                    break;
                }
                case WeightsPhase.Pack:
                {
                    // Packing is the products' own work (a BLAS packs inside its calls): counted with them, no flops.
                    long start = System.Diagnostics.Stopwatch.GetTimestamp();
                    int plane = PhasedPlane<T>(_fused, s.Filters, s.Channels, Tiles);
                    PackWeightOperands(udy.Slice(index * l.MStride, s.Filters * l.Ld), s.Filters, l.Ld, v.Slice(index * l.VStride, s.Channels * l.Ld),
                        s.Channels, l.Ld, Tiles, _m.AsSpan(index * plane, plane));
                    _gemm!.Count(0, 0, 0, start, oneThread: true);
                    break;
                }
                case WeightsPhase.PackedProducts:
                    PackedProducts(index);
                    break;
                default:
                    TransformWeightGradients(_plan.R, _m, s.Filters, s.Channels, new Span<T>(_dw, _dwLength), lo, Math.Min(s.Filters, lo + PhaseChunk));
                    break;
            }
        }

        // Item `index` of PackedProducts: channels [c0, c0 + PackRows) by PackedFilterBlocksPerItem blocks of filters:
        // position by position, the kernel calls of each block of filters (the position's V panel read once from memory,
        // kept in the caches for them), into blocks kept in the worker's caches; then their dw. Only the kernel calls
        // are counted as the products' time (dw's transform is not a product's work, as on the other path).
        private void PackedProducts(int index)
        {
            var s = _sizes;
            int pack = PackRows<T>(), block = pack * PackColumns, tiles = Tiles, plane = PhasedPlane<T>(_fused, s.Filters, s.Channels, tiles);
            int c0 = index / FilterGroups * pack, kb0 = index % FilterGroups * PackedFilterBlocksPerItem;
            int kb1 = Math.Min(FilterBlocks(s.Filters), kb0 + PackedFilterBlocksPerItem), perBlock = _plan.Positions * block;
            var blocks = PackScratch<T>.Get(PackedFilterBlocksPerItem * perBlock).AsSpan(0, (kb1 - kb0) * perBlock);
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            for (int xi = 0; xi < _plan.Positions; xi++)
            for (int kb = kb0; kb < kb1; kb++)
                PackedWeightBlock<T>(_m.AsSpan(xi * plane, plane), s.Filters, s.Channels, tiles, kb, c0, blocks.Slice((kb - kb0) * perBlock + xi * block, block));
            _gemm!.Count(Math.Min(s.Filters, kb1 * PackColumns) - kb0 * PackColumns, pack, tiles * _plan.Positions, start, oneThread: true);
            // blocks: M_ξ[k0 + j, c0 + i] at (kb − kb0)·perBlock + ξ·block + j·pack + i
            var dw = new Span<T>(_dw, _dwLength);
            for (int kb = kb0; kb < kb1; kb++)
            {
                int k0 = kb * PackColumns;
                TransformWeightGradients(_plan.R, blocks.Slice((kb - kb0) * perBlock, perBlock), block, pack, 0, Math.Min(PackColumns, s.Filters - k0), pack,
                    dw, s.Channels, k0, c0);
            }
        }
    }

    /// <summary>How a call's tiles fall into bands: whole tile rows, counted over all images, fixed by the geometry.</summary>
    private readonly record struct Plan
    {
        public Plan(int r, int n, int channels, int filters, int outH, int outW, int bandElements = BandElements)
        {
            R = r;
            Positions = (r + 1) * (r + 1);
            TilesH = (outH + 1) / 2;
            TilesW = (outW + 1) / 2;
            TileRows = n * TilesH;
            long perRow = (long)Positions * (channels + filters) * TilesW;
            int rowsWanted = (int)Math.Clamp(bandElements / Math.Max(perRow, 1), 1, TileRows);
            // One tile row a band where its products are small and still SmallProductTiles wide (AlexNet's conv2).
            if ((long)channels * filters * TilesW <= SmallProduct && TilesW >= SmallProductTiles) rowsWanted = 1;
            // An even number of bands where there are several, so that two workers share the transforms evenly; a
            // single band goes phase by phase over the workers (Run) — AlexNet's 13×13 layers at batch 8 (392 tiles)
            // ran as fast as in two bands or up to 1.1× faster. The count depends on the geometry only, never on
            // the workers.
            int bands = (TileRows + rowsWanted - 1) / rowsWanted;
            if (bands > 1 && bands % 2 == 1 && bands < TileRows) bands++;
            RowsPerBand = (TileRows + bands - 1) / bands;
            Bands = (TileRows + RowsPerBand - 1) / RowsPerBand;
            Channels = channels;
            Filters = filters;
        }

        /// <summary>The kernel's side, 3 or 5.</summary>
        public int R { get; }
        /// <summary>Positions of the transformed tile, (R + 1)²: the number of products.</summary>
        public int Positions { get; }
        public int TilesH { get; }
        public int TilesW { get; }
        public int TileRows { get; }
        public int RowsPerBand { get; }
        public int Bands { get; }
        public int Channels { get; }
        public int Filters { get; }

        /// <summary>Tile rows of band <paramref name="band"/> (the last may have fewer).</summary>
        public int Rows(int band) => Math.Min(RowsPerBand, TileRows - band * RowsPerBand);

        /// <summary>The scratch of worker <paramref name="worker"/> in a slot: the worker-th from the slot's end.</summary>
        public Span<T> Scratch<T>(Span<T> slot, int worker = 0) => slot.Slice(slot.Length - (worker + 1) * ScratchElements, ScratchElements);

        /// <summary>Tiles in a full band: the products' width.</summary>
        public int BandTiles => RowsPerBand * TilesW;

        /// <summary>One slot: V [α² × C × band] and M [α² × K × band], each row with a vector of slack, and α = R + 1 input rows split into even and odd columns.</summary>
        public long SlotElements => (long)Positions * (Channels + Filters) * (BandTiles + 64) + ScratchElements;

        // 2α halves of split rows and a line of two (SplitRows), each half ≥ TilesW + α/2 − 1 + Vector256<T>.Count
        // rounded up to whole vectors
        public int ScratchElements => 2 * (R + 2) * (TilesW + 2 + 64);
    }
}
