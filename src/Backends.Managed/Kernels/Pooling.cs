using System.Numerics;

namespace Lockstep.Backends.Managed.Kernels;

// N batch, C channels, H×W input plane, F_h×F_w window, S stride, P padding, H'×W' output plane.
// Each window is [oh·S_h − P_h, + F_h) × [ow·S_w − P_w, + F_w) clipped to the input; padding is never read.

/// <summary>POOL: max (with switches), average and L2 over windows of each plane, and their backward.</summary>
internal static class Pooling
{
    private readonly record struct Window(int H0, int H1, int W0, int W1);

    private static Window Clip(PoolSpec spec, int oh, int ow, int h, int w)
    {
        int h0 = oh * spec.StrideH - spec.PadH, w0 = ow * spec.StrideW - spec.PadW;
        return new(Math.Max(h0, 0), Math.Min(h0 + spec.KernelH, h), Math.Max(w0, 0), Math.Min(w0 + spec.KernelW, w));
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
                    int arg = win.H0 * w + win.W0;
                    for (int ih = win.H0; ih < win.H1; ih++)
                    {
                        for (int iw = win.W0; iw < win.W1; iw++)
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

    /// <summary>libtorch's avg_pool2d divisor: the window clipped to the padded input, or, unless countIncludePad, to the input.</summary>
    private static int Divisor(PoolSpec spec, int oh, int ow, int h, int w, Window inside)
    {
        if (!spec.CountIncludePad) return (inside.H1 - inside.H0) * (inside.W1 - inside.W0);
        int h0 = oh * spec.StrideH - spec.PadH, w0 = ow * spec.StrideW - spec.PadW;
        int h1 = Math.Min(h0 + spec.KernelH, h + spec.PadH), w1 = Math.Min(w0 + spec.KernelW, w + spec.PadW);
        return (h1 - h0) * (w1 - w0);
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
                    if (win.H0 >= win.H1 || win.W0 >= win.W1) { y[o] = T.Zero; continue; }
                    T sum = T.Zero;
                    for (int ih = win.H0; ih < win.H1; ih++)
                    {
                        for (int iw = win.W0; iw < win.W1; iw++) sum += xp[ih * w + iw];
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
                    if (win.H0 >= win.H1 || win.W0 >= win.W1) continue;
                    T share = dy[o] / T.CreateTruncating(Divisor(spec, oh, ow, h, w, win));
                    for (int ih = win.H0; ih < win.H1; ih++)
                    {
                        for (int iw = win.W0; iw < win.W1; iw++) dxp[ih * w + iw] += share;
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
                    for (int ih = win.H0; ih < win.H1; ih++)
                    {
                        for (int iw = win.W0; iw < win.W1; iw++)
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
                    for (int ih = win.H0; ih < win.H1; ih++)
                    {
                        for (int iw = win.W0; iw < win.W1; iw++)
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
