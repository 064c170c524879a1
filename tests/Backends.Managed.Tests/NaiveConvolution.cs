namespace Lockstep.Tests;

/// <summary>
/// CONV straight from the notes, seven nested loops, in float64: the reference that im2col + GEMM is checked against.
/// N batch, C channels, H×W input, K filters, F_h×F_w kernel, S stride, P padding, H'×W' output.
/// </summary>
internal static class NaiveConvolution
{
    // y[n,k,oh,ow] = b[k] + Σ_{c,i,j} w[k,c,i,j] · x[n,c,oh·S−P+i, ow·S−P+j]  (zero outside the input)
    public static double[] Forward(double[] x, Shape xs, double[] w, Shape ws, double[]? b, ConvSpec spec, int outH, int outW)
    {
        int n = xs.N, c = xs.C, h = xs.H, wi = xs.W, k = ws[0];
        var y = new double[n * k * outH * outW];
        for (int img = 0; img < n; img++)
        for (int f = 0; f < k; f++)
        for (int oh = 0; oh < outH; oh++)
        for (int ow = 0; ow < outW; ow++)
        {
            double sum = b?[f] ?? 0;
            for (int ch = 0; ch < c; ch++)
            for (int i = 0; i < spec.KernelH; i++)
            for (int j = 0; j < spec.KernelW; j++)
            {
                int ih = oh * spec.StrideH - spec.PadH + i, iw = ow * spec.StrideW - spec.PadW + j;
                if (ih < 0 || ih >= h || iw < 0 || iw >= wi) continue;
                sum += w[((f * c + ch) * spec.KernelH + i) * spec.KernelW + j] * x[((img * c + ch) * h + ih) * wi + iw];
            }
            y[((img * k + f) * outH + oh) * outW + ow] = sum;
        }
        return y;
    }

    // dx[n,c,ih,iw] += w[k,c,i,j]·dy[n,k,oh,ow];  dw[k,c,i,j] += x[n,c,ih,iw]·dy[n,k,oh,ow];  db[k] += dy[n,k,oh,ow]
    public static (double[] Dx, double[] Dw, double[] Db) Backward(double[] dy, double[] x, Shape xs, double[] w, Shape ws,
        ConvSpec spec, int outH, int outW)
    {
        int n = xs.N, c = xs.C, h = xs.H, wi = xs.W, k = ws[0];
        var dx = new double[x.Length];
        var dw = new double[w.Length];
        var db = new double[k];
        for (int img = 0; img < n; img++)
        for (int f = 0; f < k; f++)
        for (int oh = 0; oh < outH; oh++)
        for (int ow = 0; ow < outW; ow++)
        {
            double g = dy[((img * k + f) * outH + oh) * outW + ow];
            db[f] += g;
            for (int ch = 0; ch < c; ch++)
            for (int i = 0; i < spec.KernelH; i++)
            for (int j = 0; j < spec.KernelW; j++)
            {
                int ih = oh * spec.StrideH - spec.PadH + i, iw = ow * spec.StrideW - spec.PadW + j;
                if (ih < 0 || ih >= h || iw < 0 || iw >= wi) continue;
                int xi = ((img * c + ch) * h + ih) * wi + iw, wIndex = ((f * c + ch) * spec.KernelH + i) * spec.KernelW + j;
                dx[xi] += w[wIndex] * g;
                dw[wIndex] += x[xi] * g;
            }
        }
        return (dx, dw, db);
    }
}
