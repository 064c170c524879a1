using System.Numerics;
using Lockstep.Backends.Managed.Gemm;
using Lockstep.Backends.Managed.Tensors;

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

    // cols[(c·F_h + i)·F_w + j, oh·W' + ow] = x[c, oh·S_h − P_h + i·D_h, ow·S_w − P_w + j·D_w], 0 where that lies in the padding
    public static void Im2Col<T>(ReadOnlySpan<T> x, int channels, int h, int w, ConvSpec spec, int outH, int outW, Span<T> cols)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int row = 0;
        for (int c = 0; c < channels; c++)
        {
            var plane = x.Slice(c * h * w, h * w);
            for (int i = 0; i < spec.KernelH; i++)
            {
                for (int j = 0; j < spec.KernelW; j++, row++)
                {
                    var dst = cols.Slice(row * outH * outW, outH * outW);
                    var (owLo, owHi) = ValidRange(j * spec.DilationW, spec.StrideW, spec.PadW, w, outW);
                    for (int oh = 0; oh < outH; oh++)
                    {
                        var line = dst.Slice(oh * outW, outW);
                        int ih = oh * spec.StrideH - spec.PadH + i * spec.DilationH;
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

    // dx[c, oh·S_h − P_h + i·D_h, ow·S_w − P_w + j·D_w] += cols[(c·F_h + i)·F_w + j, oh·W' + ow], for positions inside the input
    public static void Col2Im<T>(ReadOnlySpan<T> cols, int channels, int h, int w, ConvSpec spec, int outH, int outW, Span<T> dx)
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
                        int ih = oh * spec.StrideH - spec.PadH + i * spec.DilationH;
                        if ((uint)ih >= (uint)h) continue;
                        var line = src.Slice(oh * outW, outW);
                        var dst = plane.Slice(ih * w, w);
                        int iw = owLo * spec.StrideW - spec.PadW + j * spec.DilationW;
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

    // y_n [K × HW'] = W [K × CFF] · cols_n [CFF × HW'] + b; per group g: y_n,g [K/G × HW'] = W_g [K/G × CFF/G] · cols_n,g [CFF/G × HW']
    public static void Forward<T>(IGemmProvider gemm, BufferPool pool, ReadOnlySpan<T> x, Shape xShape, ReadOnlySpan<T> w,
        int filters, ReadOnlySpan<T> b, ConvSpec spec, int outH, int outW, Span<T> y)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = xShape.N, c = xShape.C, h = xShape.H, wi = xShape.W;
        int cff = c * spec.KernelH * spec.KernelW, hw = outH * outW;
        int groups = spec.Groups, kg = filters / groups, cffg = cff / groups;
        bool pointwise = IsPointwise(spec);
        T[] cols = pointwise ? [] : pool.Rent<T>(cff * hw, clear: false);
        try
        {
            for (int img = 0; img < n; img++)
            {
                var xn = x.Slice(img * c * h * wi, c * h * wi);
                var yn = y.Slice(img * filters * hw, filters * hw);
                if (!pointwise) Im2Col(xn, c, h, wi, spec, outH, outW, cols);
                ReadOnlySpan<T> a = pointwise ? xn : cols;
                for (int g = 0; g < groups; g++)
                {
                    gemm.Gemm(false, false, kg, hw, cffg, T.One, w.Slice(g * kg * cffg, kg * cffg), cffg,
                        a.Slice(g * cffg * hw, cffg * hw), hw, T.Zero, yn.Slice(g * kg * hw, kg * hw), hw);
                }
                if (!b.IsEmpty)
                {
                    for (int k = 0; k < filters; k++)
                    {
                        var plane = yn.Slice(k * hw, hw);
                        for (int p = 0; p < hw; p++) plane[p] += b[k];
                    }
                }
            }
        }
        finally
        {
            if (!pointwise) pool.Return(cols);
        }
    }

    // dw [K × CFF] = Σ_n dy_n [K × HW'] · cols_nᵀ;  db[k] = Σ_{n,h',w'} dy;  dx_n = col2im(Wᵀ · dy_n), when dx is asked for;
    // each product per group, on the blocks the forward used
    public static void Backward<T>(IGemmProvider gemm, BufferPool pool, ReadOnlySpan<T> dy, ReadOnlySpan<T> x, Shape xShape,
        ReadOnlySpan<T> w, int filters, ConvSpec spec, int outH, int outW, Span<T> dx, Span<T> dw, Span<T> db)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = xShape.N, c = xShape.C, h = xShape.H, wi = xShape.W;
        int cff = c * spec.KernelH * spec.KernelW, hw = outH * outW;
        int groups = spec.Groups, kg = filters / groups, cffg = cff / groups;
        bool pointwise = IsPointwise(spec);
        bool needDx = !dx.IsEmpty;
        T[] cols = pointwise ? [] : pool.Rent<T>(cff * hw, clear: false);
        try
        {
            db.Clear();
            if (needDx) dx.Clear();
            for (int img = 0; img < n; img++)
            {
                var xn = x.Slice(img * c * h * wi, c * h * wi);
                var dyn = dy.Slice(img * filters * hw, filters * hw);
                if (!pointwise) Im2Col(xn, c, h, wi, spec, outH, outW, cols);
                ReadOnlySpan<T> colsN = pointwise ? xn : cols;
                for (int g = 0; g < groups; g++)
                {
                    gemm.Gemm(false, true, kg, cffg, hw, T.One, dyn.Slice(g * kg * hw, kg * hw), hw, colsN.Slice(g * cffg * hw, cffg * hw), hw,
                        img == 0 ? T.Zero : T.One, dw.Slice(g * kg * cffg, kg * cffg), cffg);
                }
                for (int k = 0; k < filters; k++)
                {
                    var plane = dyn.Slice(k * hw, hw);
                    T sum = db[k];
                    for (int p = 0; p < hw; p++) sum += plane[p];
                    db[k] = sum;
                }
                if (!needDx) continue;
                var dxn = dx.Slice(img * c * h * wi, c * h * wi);
                // A pointwise convolution's columns are the input plane itself, so Wᵀ·dy lands in dx directly.
                Span<T> dCols = pointwise ? dxn : cols;
                for (int g = 0; g < groups; g++)
                {
                    gemm.Gemm(true, false, cffg, hw, kg, T.One, w.Slice(g * kg * cffg, kg * cffg), cffg, dyn.Slice(g * kg * hw, kg * hw), hw,
                        T.Zero, dCols.Slice(g * cffg * hw, cffg * hw), hw);
                }
                if (!pointwise) Col2Im<T>(cols, c, h, wi, spec, outH, outW, dxn);
            }
        }
        finally
        {
            if (!pointwise) pool.Return(cols);
        }
    }
}
