using System.Numerics;

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

    // y = max over the window; switch = h·W + w of the first maximum in row-major order, a NaN (the last one) winning
    public static void MaxForward<T>(ReadOnlySpan<T> x, int planes, int h, int w, PoolSpec spec, int outH, int outW,
        Span<T> y, Span<long> switches) where T : unmanaged, IFloatingPointIeee754<T>
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
                    // libtorch's CPU rule: start at −∞ with the window's first index; take v when v > max or v is NaN.
                    T max = T.NegativeInfinity;
                    int arg = win.R0 * w + win.C0;
                    for (int r = 0, ih = win.R0; r < win.Rows; r++, ih += win.Dh)
                    {
                        for (int q = 0, iw = win.C0; q < win.Cols; q++, iw += win.Dw)
                        {
                            T v = xp[ih * w + iw];
                            if (v > max || T.IsNaN(v))
                            {
                                max = v;
                                arg = ih * w + iw;
                            }
                        }
                    }
                    y[o] = max;
                    switches[o] = arg;
                }
            }
        }
    }

    // dx[switch] += dy
    public static void MaxBackward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<long> switches, int planes, int h, int w, int outHw, Span<T> dx)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        dx.Clear();
        int plane = h * w;
        for (int p = 0; p < planes; p++)
        {
            var dxp = dx.Slice(p * plane, plane);
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
        dx.Clear();
        for (int p = 0; p < planes; p++)
        {
            var dxp = dx.Slice(p * h * w, h * w);
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
        dx.Clear();
        for (int p = 0; p < planes; p++)
        {
            var xp = x.Slice(p * h * w, h * w);
            var dxp = dx.Slice(p * h * w, h * w);
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
