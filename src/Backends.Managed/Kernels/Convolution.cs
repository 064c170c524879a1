using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Lockstep.Backends.Managed.Tensors;
using Lockstep.Backends.Managed.Threading;

namespace Lockstep.Backends.Managed.Kernels;

// N batch, C input channels, H×W input, K filters, F_h×F_w kernel, S stride, P padding (top/left; the bottom/right
// padding only shapes H'×W'), D dilation, G groups, H'×W' output;
// CFF = C·F_h·F_w, the rows of the im2col matrix; HW' = H'·W', its columns. Group g owns rows [g·CFF/G, (g+1)·CFF/G)
// of the columns, filters [g·K/G, (g+1)·K/G) and their weights, so a grouped convolution is G GEMMs over blocks.

/// <summary>CONV as im2col + GEMM (the notes' "implementation as matrix multiplication"), and its backward via col2im.</summary>
internal static class Convolution
{
    /// <summary>A 1×1, stride-1, unpadded convolution: the input plane already is the im2col matrix.</summary>
    public static bool IsPointwise(ConvSpec spec) =>
        spec is { KernelH: 1, KernelW: 1, StrideH: 1, StrideW: 1 } && spec.Padding.IsZero;

    // cols[(c·F_h + i)·F_w + j, (oh − oh0)·W' + ow] = x[c, oh·S_h − P_h + i·D_h, ow·S_w − P_w + j·D_w], 0 where that lies in
    // the padding, for the band of output rows oh0 ≤ oh < oh0 + outH (the whole plane when oh0 = 0 and outH = H')
    public static void Im2Col<T>(ReadOnlySpan<T> x, int channels, int h, int w, ConvSpec spec, int oh0, int outH, int outW, Span<T> cols,
        int ld = 0) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (ld == 0) ld = outH * outW;
        if (spec.StrideW > 1 && PhasedRowElements(spec, outW) <= MaxPhasedRow)
        {
            Im2ColPhased(x, channels, h, w, spec, oh0, outH, outW, cols, ld);
            return;
        }
        if (spec.StrideW == 1 && spec.DilationW == 1 && Vector512.IsHardwareAccelerated && outW <= Vector512<T>.Count
            && w + spec.PadW + spec.KernelW <= MaxNarrowLine)
        {
            Im2ColNarrow(x, channels, h, w, spec, oh0, outH, outW, cols, ld);
            return;
        }
        int row = 0;
        for (int c = 0; c < channels; c++)
        {
            var plane = x.Slice(c * h * w, h * w);
            for (int i = 0; i < spec.KernelH; i++)
            {
                for (int j = 0; j < spec.KernelW; j++, row++)
                {
                    var dst = cols.Slice(row * ld, outH * outW);
                    var (owLo, owHi) = ValidRange(j * spec.DilationW, spec.StrideW, spec.PadW, w, outW);
                    for (int oh = 0; oh < outH; oh++)
                    {
                        var line = dst.Slice(oh * outW, outW);
                        int ih = (oh0 + oh) * spec.StrideH - spec.PadH + i * spec.DilationH;
                        if ((uint)ih >= (uint)h || owLo >= owHi)
                        {
                            line.Clear();
                            continue;
                        }
                        line[..owLo].Clear();
                        line[owHi..].Clear();
                        var src = plane.Slice(ih * w, w);
                        int iw = owLo * spec.StrideW - spec.PadW + j * spec.DilationW;
                        if (spec.StrideW == 1)
                        {
                            src.Slice(iw, owHi - owLo).CopyTo(line[owLo..owHi]);
                        }
                        else
                        {
                            for (int ow = owLo; ow < owHi; ow++, iw += spec.StrideW) line[ow] = src[iw];
                        }
                    }
                }
            }
        }
    }

    /// <summary>Longest zero-bordered input line <see cref="Im2ColNarrow{T}"/> keeps (elements, before the vector of slack).</summary>
    private const int MaxNarrowLine = 256;

    // Im2Col for output rows no wider than a vector, column stride 1 (VGG16's 14×14 and 7×7 layers), where the plain
    // form copies 14 elements a call (1.2 ms an image of 512 channels, as long as the product it feeds takes 5): each
    // input row is copied once into a zero-bordered line, and the line of every tap is one vector load from it and one
    // store, which runs past the line into the tap's next lines, written after it; a tap's last lines, whose vector would
    // reach the next tap's, are stored exactly. The same values as Im2Col.
    private static void Im2ColNarrow<T>(ReadOnlySpan<T> x, int channels, int h, int w, ConvSpec spec, int oh0, int outH, int outW, Span<T> cols,
        int ld)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int plane = outH * outW, lanes = Vector512<T>.Count;
        Span<T> line = stackalloc T[MaxNarrowLine + Vector512<T>.Count];   // x's row at PadW, zeros around it
        Span<T> exact = stackalloc T[Vector512<T>.Count];
        line.Clear();
        ref T lr = ref MemoryMarshal.GetReference(line);
        ref T cr = ref MemoryMarshal.GetReference(cols);
        for (int c = 0; c < channels; c++)
        {
            var xc = x.Slice(c * h * w, h * w);
            for (int i = 0; i < spec.KernelH; i++)
            {
                int row0 = (c * spec.KernelH + i) * spec.KernelW;
                for (int oh = 0; oh < outH; oh++)
                {
                    int ih = (oh0 + oh) * spec.StrideH - spec.PadH + i * spec.DilationH;
                    // A whole vector stays inside the tap's lines [0, plane) up to a line lanes − W' from their end.
                    bool inside = (uint)ih < (uint)h, whole = oh * outW + lanes <= plane;
                    if (inside) xc.Slice(ih * w, w).CopyTo(line.Slice(spec.PadW, w));
                    for (int j = 0; j < spec.KernelW; j++)
                    {
                        int at = (row0 + j) * ld + oh * outW;
                        var v = inside ? Vector512.LoadUnsafe(ref lr, (nuint)j) : Vector512<T>.Zero;
                        if (whole)
                        {
                            v.StoreUnsafe(ref cr, (nuint)at);
                            continue;
                        }
                        v.CopyTo(exact);
                        exact[..outW].CopyTo(cols.Slice(at, outW));
                    }
                }
            }
        }
    }

    /// <summary>Elements of one input row split into its S_w column phases, as <see cref="Im2ColPhased{T}"/> keeps it.</summary>
    private static int PhasedRowElements(ConvSpec spec, int outW) =>
        spec.StrideW * (outW + (spec.KernelW - 1) * spec.DilationW / spec.StrideW);

    /// <summary>Largest phased row <see cref="Im2ColPhased{T}"/> stacks (elements); wider rows take the plain gather.</summary>
    private const int MaxPhasedRow = 4096;

    // Im2Col for a column stride S_w > 1 (AlexNet's conv1: 11×11 / 4), where the plain form gathers every element S_w
    // apart. Each input row under a band row is split once into its S_w column phases, phase φ holding
    // x[…, m·S_w + φ − P_w] for m = 0, 1, … (0 in the padding); the F_w columns rows of that input row are then
    // contiguous copies, tap j = q·S_w + φ (in units of D_w·j) being phase φ from m = q. The same values as Im2Col.
    private static void Im2ColPhased<T>(ReadOnlySpan<T> x, int channels, int h, int w, ConvSpec spec, int oh0, int outH, int outW, Span<T> cols,
        int ld)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int stride = spec.StrideW, span = PhasedRowElements(spec, outW) / stride;
        Span<T> phases = stackalloc T[stride * span];
        for (int c = 0; c < channels; c++)
        {
            var xc = x.Slice(c * h * w, h * w);
            for (int i = 0; i < spec.KernelH; i++)
            {
                int row0 = (c * spec.KernelH + i) * spec.KernelW;
                for (int oh = 0; oh < outH; oh++)
                {
                    int ih = (oh0 + oh) * spec.StrideH - spec.PadH + i * spec.DilationH;
                    if ((uint)ih >= (uint)h)
                    {
                        for (int j = 0; j < spec.KernelW; j++) cols.Slice((row0 + j) * ld + oh * outW, outW).Clear();
                        continue;
                    }
                    var src = xc.Slice(ih * w, w);
                    for (int phase = 0; phase < stride; phase++)
                    {
                        var dst = phases.Slice(phase * span, span);
                        for (int m = 0, iw = phase - spec.PadW; m < span; m++, iw += stride) dst[m] = (uint)iw < (uint)w ? src[iw] : T.Zero;
                    }
                    for (int j = 0; j < spec.KernelW; j++)
                    {
                        int offset = j * spec.DilationW;
                        phases.Slice(offset % stride * span + offset / stride, outW).CopyTo(cols.Slice((row0 + j) * ld + oh * outW, outW));
                    }
                }
            }
        }
    }

    // dx[c, oh·S_h − P_h + i·D_h, ow·S_w − P_w + j·D_w] += cols[(c·F_h + i)·F_w + j, (oh − oh0)·W' + ow], for positions inside
    // the input, over the band of output rows oh0 ≤ oh < oh0 + outH
    public static void Col2Im<T>(ReadOnlySpan<T> cols, int channels, int h, int w, ConvSpec spec, int oh0, int outH, int outW, Span<T> dx)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int row = 0;
        for (int c = 0; c < channels; c++)
        {
            var plane = dx.Slice(c * h * w, h * w);
            for (int i = 0; i < spec.KernelH; i++)
            {
                for (int j = 0; j < spec.KernelW; j++, row++)
                {
                    var src = cols.Slice(row * outH * outW, outH * outW);
                    var (owLo, owHi) = ValidRange(j * spec.DilationW, spec.StrideW, spec.PadW, w, outW);
                    for (int oh = 0; oh < outH; oh++)
                    {
                        int ih = (oh0 + oh) * spec.StrideH - spec.PadH + i * spec.DilationH;
                        if ((uint)ih >= (uint)h) continue;
                        var line = src.Slice(oh * outW, outW);
                        var dst = plane.Slice(ih * w, w);
                        int iw = owLo * spec.StrideW - spec.PadW + j * spec.DilationW;
                        if (spec.StrideW == 1 && owHi > owLo)
                        {
                            // Contiguous on both sides: one vector add (each element still gets its taps in the same order).
                            var run = dst.Slice(iw, owHi - owLo);
                            TensorPrimitives.Add(run, line[owLo..owHi], run);
                            continue;
                        }
                        for (int ow = owLo; ow < owHi; ow++, iw += spec.StrideW) dst[iw] += line[ow];
                    }
                }
            }
        }
    }

    /// <summary>The outputs ow in [lo, hi) whose tap at offset t = j·D, ow·S − P + t, lies inside [0, size).</summary>
    private static (int Lo, int Hi) ValidRange(int t, int stride, int pad, int size, int outSize)
    {
        int first = pad - t;                 // ow·S ≥ P − t
        int lo = first <= 0 ? 0 : (first + stride - 1) / stride;
        int last = size - 1 + pad - t;       // ow·S ≤ size − 1 + P − t
        int hi = last < 0 ? 0 : Math.Min(outSize, last / stride + 1);
        return (Math.Min(lo, hi), hi);
    }

    /// <summary>
    /// y = conv(x, w) + b: where <paramref name="specialized"/>, by Winograd where <see cref="Winograd.Applies"/> and
    /// directly where <see cref="DirectConvolution.Applies"/>; else by im2col + GEMM.
    /// </summary>
    public static void Forward<T>(ParallelGemm gemm, WorkerPool workers, BufferPool pool, ReadOnlySpan<T> x, Shape xShape,
        ReadOnlySpan<T> w, int filters, ReadOnlySpan<T> b, ConvSpec spec, int outH, int outW, Span<T> y, bool specialized = true,
        ManagedTensor? weightTensor = null) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (specialized && Winograd.Applies(spec, xShape.N, xShape.C, filters, outH, outW))
        {
            Winograd.Forward(gemm, workers, pool, spec.KernelH, x, xShape.N, xShape.C, xShape.H, xShape.W, w, filters, b, spec.PadH, spec.PadW,
                outH, outW, y, weightTensor);
        }
        else if (specialized && DirectConvolution.Applies(xShape, filters, spec, outW, DirectConvolution.Lanes<T>()))
            DirectConvolution.Forward(workers, pool, x, xShape, w, filters, b, spec, outH, outW, y);
        else
            ForwardIm2Col(gemm, workers, pool, x, xShape, w, filters, b, spec, outH, outW, y);
    }

    // y_n [K × HW'] = W [K × CFF] · cols_n [CFF × HW'] + b; per group g: y_n,g [K/G × HW'] = W_g [K/G × CFF/G] · cols_n,g [CFF/G × HW']
    // Images in parallel, each on one worker with its own columns and the BLAS at one thread; a single image instead
    // splits its products over the workers.
    public static unsafe void ForwardIm2Col<T>(ParallelGemm gemm, WorkerPool workers, BufferPool pool, ReadOnlySpan<T> x, Shape xShape,
        ReadOnlySpan<T> w, int filters, ReadOnlySpan<T> b, ConvSpec spec, int outH, int outW, Span<T> y)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var g = new Geometry(xShape, filters, spec, outH, outW);
        bool parallel = workers.Threads > 1 && g.N > 1;
        int slots = parallel ? Math.Min(workers.Threads, g.N) : 1;
        // The job also keeps the small per-call arrays (columns per slot), so a repeated call allocates nothing.
        var job = Cache<ImageJob<T>>.Rent();
        var cols = RentColumns<T>(pool, g, job.Slots(slots, out _));
        try
        {
            if (!parallel)
            {
                for (int img = 0; img < g.N; img++) ForwardImage(gemm, g, img, x, w, b, cols[0], y, oneThread: false);
                return;
            }
            fixed (T* px = x, pw = w, pb = b, py = y)
            {
                job.Set(gemm, g, cols, forward: true);
                job.Pin(px, x.Length, pw, w.Length, pb, b.Length, py, y.Length);
                workers.For(g.N, job);
            }
        }
        finally
        {
            ReturnColumns(pool, cols);
            job.Clear();
            Cache<ImageJob<T>>.Return(job);
        }
    }

    private static void ForwardImage<T>(ParallelGemm gemm, in Geometry g, int img, ReadOnlySpan<T> x, ReadOnlySpan<T> w,
        ReadOnlySpan<T> b, T[] cols, Span<T> y, bool oneThread) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var xn = x.Slice(img * g.InputPerImage, g.InputPerImage);
        var yn = y.Slice(img * g.Filters * g.Hw, g.Filters * g.Hw);
        // A band of output rows at a time: its columns [CFF × band] stay within the tile budget (see Geometry), and
        // y_n's band is a block of every filter's row (leading dimension H'·W').
        for (int oh0 = 0; oh0 < g.OutH; oh0 += g.BandRows)
        {
            int rows = Math.Min(g.BandRows, g.OutH - oh0), bandCols = rows * g.OutW, offset = oh0 * g.OutW;
            if (!g.Pointwise) Im2Col(xn, g.C, g.H, g.W, g.Spec, oh0, rows, g.OutW, cols);
            ReadOnlySpan<T> a = g.Pointwise ? xn : cols;
            for (int grp = 0; grp < g.Groups; grp++)
            {
                gemm.Gemm(false, false, g.Kg, bandCols, g.Cffg, T.One, w.Slice(grp * g.Kg * g.Cffg, g.Kg * g.Cffg), g.Cffg,
                    a.Slice(grp * g.Cffg * bandCols, g.Cffg * bandCols), bandCols, T.Zero,
                    yn.Slice(grp * g.Kg * g.Hw + offset, (g.Kg - 1) * g.Hw + bandCols), g.Hw, oneThread);
            }
        }
        if (b.IsEmpty) return;
        for (int k = 0; k < g.Filters; k++)
        {
            var plane = yn.Slice(k * g.Hw, g.Hw);
            TensorPrimitives.Add(plane, b[k], plane);
        }
    }

    // dw [K × CFF] = Σ_n dy_n [K × HW'] · cols_nᵀ;  db[k] = Σ_{n,h',w'} dy;  dx_n = col2im(Wᵀ · dy_n), when dx is asked for;
    // each product per group, on the blocks the forward used. In parallel, each worker sums its images' dw and db
    // into its own buffers (summed at the end); dx_n belongs to one image, so workers never write the same element.
    // Where Winograd.Applies, dx goes by Winograd, and where Winograd.AppliesToWeights (more tiles) dw and db too, by the
    // forward's dual; where DirectConvolution.AppliesToWeights (or AppliesToWeightsByFilters), dw and db are computed
    // directly and only dx goes this way.
    public static unsafe void Backward<T>(ParallelGemm gemm, WorkerPool workers, BufferPool pool, ReadOnlySpan<T> dy,
        ReadOnlySpan<T> x, Shape xShape, ReadOnlySpan<T> w, int filters, ConvSpec spec, int outH, int outW, Span<T> dx,
        Span<T> dw, Span<T> db, bool specialized = true, ManagedTensor? weightTensor = null) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (!dx.IsEmpty && specialized && Winograd.Applies(spec, xShape.N, xShape.C, filters, outH, outW))
        {
            // dx by Winograd as a convolution of dy (with the forward's transformed weights where they are kept); dw and db below.
            Winograd.BackwardData(gemm, workers, pool, spec.KernelH, dy, xShape.N, filters, outH, outW, w, xShape.C, spec.PadH, spec.PadW,
                xShape.H, xShape.W, dx, weightTensor);
            dx = default;
        }
        if (specialized && Winograd.AppliesToWeights(spec, xShape.N, xShape.C, filters, outH, outW))
        {
            // dw and db by the forward's dual F(r×r, 2×2); dx went by Winograd above (AppliesToWeights implies Applies).
            Winograd.BackwardWeights(gemm, workers, pool, spec.KernelH, dy, x, xShape.N, xShape.C, xShape.H, xShape.W, filters,
                spec.PadH, spec.PadW, outH, outW, dw, db);
            return;
        }
        int lanes = DirectConvolution.Lanes<T>();
        if (!dx.IsEmpty && specialized && DirectConvolution.AppliesToData(xShape, filters, spec))
        {
            // dx without columns (few filters); dw and db below.
            DirectConvolution.BackwardDataByTaps(workers, pool, dy, xShape, w, filters, spec, outH, outW, dx);
            dx = default;
        }
        bool byFilters = specialized && DirectConvolution.AppliesToWeightsByFilters(xShape, filters, spec, outH, outW, lanes);
        bool weights = !specialized || !(byFilters || DirectConvolution.AppliesToWeights(xShape, filters, spec, outH, outW, lanes));
        if (byFilters)
        {
            DirectConvolution.BackwardWeightsByFilters(workers, pool, dy, x, xShape, filters, spec, outH, outW, dw, db);
            if (dx.IsEmpty) return;
        }
        else if (!weights)
        {
            DirectConvolution.BackwardWeights(workers, pool, dy, x, xShape, filters, spec, outH, outW, dw, db);
            if (dx.IsEmpty) return;
        }
        var g = new Geometry(xShape, filters, spec, outH, outW);
        if (weights && specialized && BatchesWeights(g))
        {
            // dw and db over the whole batch; dx, if asked for, image by image below.
            BackwardWeightsBatched(gemm, workers, pool, g, dy, x, dw, db);
            if (dx.IsEmpty) return;
            weights = false;
        }
        bool parallel = workers.Threads > 1 && g.N > 1;
        int slots = parallel ? Math.Min(workers.Threads, g.N) : 1;
        var job = Cache<ImageJob<T>>.Rent();
        var cols = RentColumns<T>(pool, g, job.Slots(slots, out var partial));
        for (int i = 1; i < slots && weights; i++) partial[i] = pool.Rent<T>(dw.Length + db.Length, clear: true);
        try
        {
            if (weights)
            {
                dw.Clear();
                db.Clear();
            }
            if (!parallel)
            {
                for (int img = 0; img < g.N; img++) BackwardImage(gemm, g, img, dy, x, w, cols[0], dx, dw, db, weights, oneThread: false);
                return;
            }
            fixed (T* pdy = dy, px = x, pw = w, pdx = dx, pdw = dw, pdb = db)
            {
                job.Set(gemm, g, cols, forward: false, weights);
                job.Pin(px, x.Length, pw, w.Length, null, 0, null, 0);
                job.PinBackward(pdy, dy.Length, pdx, dx.Length, pdw, dw.Length, pdb, db.Length, partial);
                // One item per slot, not per image: slot s sums images s, s + slots, … in order, whichever thread
                // runs it, so dw and db are the same bits whether the workers were free or busy (run inline).
                workers.For(slots, job);
            }
            if (weights) PartialSums<T>.Add(workers, dw, partial, 1, slots - 1, 0);
            for (int i = 1; i < slots && weights; i++) TensorPrimitives.Add(db, partial[i].AsSpan(dw.Length, db.Length), db);
        }
        finally
        {
            ReturnColumns(pool, cols);
            for (int i = 1; i < slots; i++)
            {
                if (partial[i] is { } p) pool.Return(p);
                partial[i] = null!;
            }
            job.Clear();
            Cache<ImageJob<T>>.Return(job);
        }
    }

    /// <summary>Largest im2col matrix of a whole batch <see cref="BackwardWeightsBatched{T}"/> builds (elements: 16 MiB of floats).</summary>
    public const int BatchColumnElements = 1 << 22;

    /// <summary>Output planes up to this size (VGG16's 14×14 and 7×7) make per-image products too short in K.</summary>
    public const int BatchPlane = 256;

    /// <summary>Elements <see cref="BackwardWeightsBatched{T}"/> rents for this geometry (columns and regrouped dy), 0 where it is not taken.</summary>
    public static long BatchedWeightsElements(Shape xShape, int filters, ConvSpec spec, int outH, int outW)
    {
        var g = new Geometry(xShape, filters, spec, outH, outW);
        return BatchesWeights(g) ? (long)(g.Cff + g.Filters) * g.N * g.Hw : 0;
    }

    // dw as one product over the whole batch where each image's product would be short (H'·W' ≤ BatchPlane) and the
    // batch's columns fit BatchColumnElements; ungrouped, not pointwise, one band an image. The geometry alone decides,
    // never the workers, so the bits do not depend on the thread count.
    private static bool BatchesWeights(in Geometry g) =>
        g.Groups == 1 && !g.Pointwise && g.N > 1 && g.BandRows >= g.OutH && g.Hw <= BatchPlane
        && (long)g.N * g.ColumnElements <= BatchColumnElements;

    // dw [K × CFF] = dy' [K × N·H'W'] · cols'ᵀ, with cols' the batch's columns side by side (image n's from column n·H'W'
    // of every row, built over the workers) and dy' dy regrouped by filter: one product with K = N·H'W' split over the
    // workers by ParallelGemm, in place of a product per image with K = H'W' into per-slot partials added after (VGG16's
    // 14×14×512 at batch 2: K = 392 against 196, and no 9.4 MB partial to clear and add). db sums images in order.
    private static unsafe void BackwardWeightsBatched<T>(ParallelGemm gemm, WorkerPool workers, BufferPool pool, in Geometry g,
        ReadOnlySpan<T> dy, ReadOnlySpan<T> x, Span<T> dw, Span<T> db) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int k = g.N * g.Hw;
        var cols = pool.Rent<T>(checked(g.Cff * k), clear: false);
        var grouped = pool.Rent<T>(checked(g.Filters * k), clear: false);
        var job = Cache<BatchColumnsJob<T>>.Rent();
        try
        {
            fixed (T* px = x, pc = cols)
            {
                job.Set(g, px, x.Length, pc, cols.Length);
                workers.For(g.N, job);
            }
            for (int n = 0; n < g.N; n++)
            for (int f = 0; f < g.Filters; f++)
            {
                dy.Slice((n * g.Filters + f) * g.Hw, g.Hw).CopyTo(grouped.AsSpan(f * k + n * g.Hw, g.Hw));
            }
            gemm.Gemm(false, true, g.Filters, g.Cff, k, T.One, grouped, k, cols, k, T.Zero, dw, g.Cff, oneThread: false);
            db.Clear();
            for (int n = 0; n < g.N; n++)
            for (int f = 0; f < g.Filters; f++) db[f] += TensorPrimitives.Sum(dy.Slice((n * g.Filters + f) * g.Hw, g.Hw));
        }
        finally
        {
            job.Clear();
            Cache<BatchColumnsJob<T>>.Return(job);
            pool.Return(cols);
            pool.Return(grouped);
        }
    }

    /// <summary>Image n's columns into the batch's im2col matrix, from column n·H'W' of every row (ld = N·H'W').</summary>
    private sealed unsafe class BatchColumnsJob<T> : IParallelWork where T : unmanaged, IFloatingPointIeee754<T>
    {
        private Geometry _g;
        private T* _x, _cols;
        private int _xLength, _colsLength;

        public void Set(in Geometry g, T* x, int xLength, T* cols, int colsLength)
        {
            _g = g;
            _x = x;
            _cols = cols;
            (_xLength, _colsLength) = (xLength, colsLength);
        }

        public void Clear() => _x = _cols = null;

        public void Run(int index, int worker)
        {
            var xn = new ReadOnlySpan<T>(_x, _xLength).Slice(index * _g.InputPerImage, _g.InputPerImage);
            int start = index * _g.Hw;
            Im2Col(xn, _g.C, _g.H, _g.W, _g.Spec, 0, _g.OutH, _g.OutW, new Span<T>(_cols, _colsLength)[start..], ld: _g.N * _g.Hw);
        }
    }

    private static void BackwardImage<T>(ParallelGemm gemm, in Geometry g, int img, ReadOnlySpan<T> dy, ReadOnlySpan<T> x,
        ReadOnlySpan<T> w, T[] cols, Span<T> dx, Span<T> dw, Span<T> db, bool weights, bool oneThread) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var xn = x.Slice(img * g.InputPerImage, g.InputPerImage);
        var dyn = dy.Slice(img * g.Filters * g.Hw, g.Filters * g.Hw);
        for (int k = 0; k < g.Filters && weights; k++) db[k] += TensorPrimitives.Sum(dyn.Slice(k * g.Hw, g.Hw));
        var dxn = dx.IsEmpty ? default : dx.Slice(img * g.InputPerImage, g.InputPerImage);
        if (!dx.IsEmpty && !g.Pointwise) dxn.Clear();
        // Band by band, as the forward: dw += dy_n,band · cols_bandᵀ, then the band's column gradient Wᵀ · dy_n,band
        // (reusing the columns' buffer) scattered into dx_n by col2im; bands in order, so the sums are deterministic.
        for (int oh0 = 0; oh0 < g.OutH; oh0 += g.BandRows)
        {
            int rows = Math.Min(g.BandRows, g.OutH - oh0), bandCols = rows * g.OutW, offset = oh0 * g.OutW;
            if (!g.Pointwise && weights) Im2Col(xn, g.C, g.H, g.W, g.Spec, oh0, rows, g.OutW, cols);
            ReadOnlySpan<T> colsN = g.Pointwise ? xn : cols;
            for (int grp = 0; grp < g.Groups && weights; grp++)
            {
                gemm.Gemm(false, true, g.Kg, g.Cffg, bandCols, T.One, dyn.Slice(grp * g.Kg * g.Hw + offset, (g.Kg - 1) * g.Hw + bandCols), g.Hw,
                    colsN.Slice(grp * g.Cffg * bandCols, g.Cffg * bandCols), bandCols, T.One, dw.Slice(grp * g.Kg * g.Cffg, g.Kg * g.Cffg), g.Cffg, oneThread);
            }
            if (dx.IsEmpty) continue;
            // A pointwise product writes dx_n directly; otherwise the columns' gradient is scattered back by col2im.
            Span<T> dCols = g.Pointwise ? dxn : cols;
            for (int grp = 0; grp < g.Groups; grp++)
            {
                gemm.Gemm(true, false, g.Cffg, bandCols, g.Kg, T.One, w.Slice(grp * g.Kg * g.Cffg, g.Kg * g.Cffg), g.Cffg,
                    dyn.Slice(grp * g.Kg * g.Hw + offset, (g.Kg - 1) * g.Hw + bandCols), g.Hw, T.Zero,
                    dCols.Slice(grp * g.Cffg * bandCols, g.Cffg * bandCols), bandCols, oneThread);
            }
            if (!g.Pointwise) Col2Im<T>(cols, g.C, g.H, g.W, g.Spec, oh0, rows, g.OutW, dxn);
        }
    }

    private static T[][] RentColumns<T>(BufferPool pool, in Geometry g, T[][] cols) where T : unmanaged
    {
        for (int i = 0; i < cols.Length; i++) cols[i] = g.Pointwise ? [] : pool.Rent<T>(g.ColumnElements, clear: false);
        return cols;
    }

    private static void ReturnColumns<T>(BufferPool pool, T[][] cols) where T : unmanaged
    {
        for (int i = 0; i < cols.Length; i++)
        {
            if (cols[i] is { } c) pool.Return(c);
            cols[i] = null!;
        }
    }

    /// <summary>
    /// The im2col matrix of an image is built a band of output rows at a time once it would exceed this many elements
    /// (4 MiB of floats; VGG16's conv1_2 has 576 × 50176 = 115 MB of them per image): the workspace stays bounded,
    /// and a band's columns are still in cache when the product reads them. A band is at least one row.
    /// The bands depend on the geometry only, never on the workers, so the sums are the same bits on any thread count.
    /// </summary>
    public const int ColumnTileElements = 1 << 20;

    /// <summary>Rows per band: all when CFF·H'·W' fits <see cref="ColumnTileElements"/>, else as many as fit.</summary>
    public static int BandRowsFor(int cff, int outH, int outW)
    {
        long perRow = (long)cff * outW;
        if (perRow * outH <= ColumnTileElements) return Math.Max(outH, 1);
        return (int)Math.Clamp(ColumnTileElements / Math.Max(perRow, 1), 1, outH);
    }

    /// <summary>The sizes one convolution call works with.</summary>
    private readonly record struct Geometry
    {
        public Geometry(Shape xShape, int filters, ConvSpec spec, int outH, int outW)
        {
            (N, C, H, W, Filters, Spec, OutH, OutW) = (xShape.N, xShape.C, xShape.H, xShape.W, filters, spec, outH, outW);
            Cff = C * spec.KernelH * spec.KernelW;
            Hw = outH * outW;
            Groups = spec.Groups;
            Kg = filters / Groups;
            Cffg = Cff / Groups;
            InputPerImage = C * H * W;
            Pointwise = IsPointwise(spec);
            BandRows = Pointwise ? outH : BandRowsFor(Cff, outH, outW);
        }

        /// <summary>Output rows per band of columns; all of them when the whole column matrix fits the tile budget.</summary>
        public int BandRows { get; }

        /// <summary>Elements of one column buffer: CFF × (band rows · W').</summary>
        public int ColumnElements => Pointwise ? 0 : Cff * BandRows * OutW;

        public int N { get; }
        public int C { get; }
        public int H { get; }
        public int W { get; }
        public int Filters { get; }
        public ConvSpec Spec { get; }
        public int OutH { get; }
        public int OutW { get; }
        public int Cff { get; }
        public int Hw { get; }
        public int Groups { get; }
        public int Kg { get; }
        public int Cffg { get; }
        public int InputPerImage { get; }
        public bool Pointwise { get; }
    }

    /// <summary>One image of a forward call, or one slot of images of a backward call, on the worker that takes it;
    /// operands pinned by the caller.</summary>
    private sealed unsafe class ImageJob<T> : IParallelWork where T : unmanaged, IFloatingPointIeee754<T>
    {
        private ParallelGemm? _gemm;
        private Geometry _g;
        private T[][] _cols = [];
        private T[][] _partial = [];
        private SlotArrays<T> _colsStore, _partialStore;
        private bool _forward, _weights;
        private T* _x, _w, _b, _y, _dy, _dx, _dw, _db;
        private int _xLength, _wLength, _bLength, _yLength, _dyLength, _dxLength, _dwLength, _dbLength;

        /// <summary>Arrays of <paramref name="slots"/> entries for the columns and the partial sums, kept between calls.</summary>
        public T[][] Slots(int slots, out T[][] partial)
        {
            partial = _partialStore.Get(slots);
            return _colsStore.Get(slots);
        }

        public void Set(ParallelGemm gemm, in Geometry g, T[][] cols, bool forward, bool weights = true)
        {
            _weights = weights;
            _gemm = gemm;
            _g = g;
            _cols = cols;
            _forward = forward;
        }

        public void Pin(T* x, int xLength, T* w, int wLength, T* b, int bLength, T* y, int yLength)
        {
            _x = x; _w = w; _b = b; _y = y;
            (_xLength, _wLength, _bLength, _yLength) = (xLength, wLength, bLength, yLength);
        }

        public void PinBackward(T* dy, int dyLength, T* dx, int dxLength, T* dw, int dwLength, T* db, int dbLength, T[][] partial)
        {
            _dy = dy; _dx = dx; _dw = dw; _db = db;
            (_dyLength, _dxLength, _dwLength, _dbLength) = (dyLength, dxLength, dwLength, dbLength);
            _partial = partial;
        }

        public void Clear()
        {
            _gemm = null;
            _cols = _partial = [];
            _x = _w = _b = _y = _dy = _dx = _dw = _db = null;
        }

        public void Run(int index, int worker)
        {
            var x = new ReadOnlySpan<T>(_x, _xLength);
            var w = new ReadOnlySpan<T>(_w, _wLength);
            if (_forward)
            {
                ForwardImage(_gemm!, _g, index, x, w, new ReadOnlySpan<T>(_b, _bLength), _cols[worker], new Span<T>(_y, _yLength), oneThread: true);
                return;
            }
            // Backward items are slots (see Backward): slot 0 sums into dw and db themselves, the others into their own
            // partial buffers, each over its images in order.
            int slot = index, slots = _cols.Length;
            Span<T> dw = slot == 0 || !_weights ? new Span<T>(_dw, _dwLength) : _partial[slot].AsSpan(0, _dwLength);
            Span<T> db = slot == 0 || !_weights ? new Span<T>(_db, _dbLength) : _partial[slot].AsSpan(_dwLength, _dbLength);
            for (int img = slot; img < _g.N; img += slots)
            {
                BackwardImage(_gemm!, _g, img, new ReadOnlySpan<T>(_dy, _dyLength), x, w, _cols[slot], new Span<T>(_dx, _dxLength),
                    dw, db, _weights, oneThread: true);
            }
        }
    }
}
