namespace Lockstep.Conformance.Reference;

/// <summary>
/// A loop-only backend written straight from the notes: no im2col, no BLAS, no libtorch. It computes in double
/// and rounds each op's result once to the tensor's dtype, so it is an independent oracle for both real backends,
/// and it shows that a third party can plug a backend into Lockstep without touching Abstractions.
/// Shapes: N batch, C channels, H×W input, K filters, F_h×F_w kernel, Ho×Wo output.
/// </summary>
public sealed class NaiveBackend : IBackend
{
    public string Name => "naive";
    public string Description => "naive (loops in double, rounded per op)";

    private sealed class Tensor(NaiveBackend backend, Shape shape, DType dtype, double[] data) : ITensor
    {
        public Shape Shape { get; } = shape;
        public DType DType { get; } = dtype;
        public IBackend Backend { get; } = backend;
        public bool IsDisposed { get; private set; }
        public double[] Data { get; } = data;
        public void Dispose() => IsDisposed = true;
    }

    private Tensor Make(Shape shape, DType dtype, double[] data)
    {
        if (dtype == DType.Float32)
        {
            for (int i = 0; i < data.Length; i++) data[i] = (float)data[i];
        }
        return new Tensor(this, shape, dtype, data);
    }

    private static double[] D(ITensor t) => ((Tensor)t).Data;

    public ITensor Upload<T>(ReadOnlySpan<T> data, Shape shape) where T : unmanaged
    {
        var dtype = OpChecks.Upload<T>(data.Length, shape);
        var values = new double[data.Length];
        for (int i = 0; i < data.Length; i++)
        {
            values[i] = data[i] switch { float f => f, double d => d, long l => l, _ => throw new NotSupportedException() };
        }
        return new Tensor(this, shape, dtype, values);
    }

    public void Download<T>(ITensor tensor, Span<T> destination) where T : unmanaged
    {
        OpChecks.Download<T>(this, tensor, destination.Length);
        var data = D(tensor);
        for (int i = 0; i < data.Length; i++)
        {
            destination[i] = tensor.DType switch
            {
                DType.Float32 => (T)(object)(float)data[i],
                DType.Float64 => (T)(object)data[i],
                _ => (T)(object)(long)data[i],
            };
        }
    }

    public ITensor Zeros(Shape shape, DType dtype)
    {
        OpChecks.Zeros(shape, dtype);
        return new Tensor(this, shape, dtype, new double[shape.Count]);
    }

    public void Copy(ITensor source, ITensor destination)
    {
        OpChecks.Copy(this, source, destination);
        D(source).CopyTo(D(destination), 0);
    }

    /// <summary>
    /// y[n,k,i,j] = b[k] + Σ_c Σ_u Σ_v w[k,c,u,v] · x[n, g·C/G + c, i·S−P+u·D, j·S−P+v·D] (zero outside), c &lt; C/G
    /// over the input channels of filter k's group g = k / (K/G); P is the top/left padding.
    /// </summary>
    public ITensor Conv2d(ITensor x, ITensor w, ITensor? b, ConvSpec spec)
    {
        var ys = OpChecks.Conv2d(this, x, w, b, spec);
        var (X, W, B) = (D(x), D(w), b is null ? null : D(b));
        int n = x.Shape.N, c = x.Shape.C, h = x.Shape.H, wd = x.Shape.W, k = ys.C, ho = ys.H, wo = ys.W;
        int cg = c / spec.Groups, kg = k / spec.Groups;
        var y = new double[ys.Count];
        for (int ni = 0; ni < n; ni++)
        for (int ki = 0; ki < k; ki++)
        for (int i = 0; i < ho; i++)
        for (int j = 0; j < wo; j++)
        {
            double sum = B?[ki] ?? 0;
            for (int ci = 0; ci < cg; ci++)
            for (int u = 0; u < spec.KernelH; u++)
            for (int v = 0; v < spec.KernelW; v++)
            {
                int r = i * spec.StrideH - spec.PadH + u * spec.DilationH, q = j * spec.StrideW - spec.PadW + v * spec.DilationW;
                if (r < 0 || r >= h || q < 0 || q >= wd) continue;
                int channel = ki / kg * cg + ci;
                sum += W[((ki * cg + ci) * spec.KernelH + u) * spec.KernelW + v] * X[((ni * c + channel) * h + r) * wd + q];
            }
            y[((ni * k + ki) * ho + i) * wo + j] = sum;
        }
        return Make(ys, x.DType, y);
    }

    /// <summary>The same loops as the forward, each product's contribution sent back to x and w.</summary>
    public ConvGradients Conv2dBackward(ITensor dy, ITensor x, ITensor w, ConvSpec spec, bool needDx)
    {
        var ys = OpChecks.Conv2dBackward(this, dy, x, w, spec);
        var (X, W, DY) = (D(x), D(w), D(dy));
        int n = x.Shape.N, c = x.Shape.C, h = x.Shape.H, wd = x.Shape.W, k = ys.C, ho = ys.H, wo = ys.W;
        int cg = c / spec.Groups, kg = k / spec.Groups;
        var dx = new double[x.Shape.Count];
        var dw = new double[w.Shape.Count];
        var db = new double[k];
        for (int ni = 0; ni < n; ni++)
        for (int ki = 0; ki < k; ki++)
        for (int i = 0; i < ho; i++)
        for (int j = 0; j < wo; j++)
        {
            double g = DY[((ni * k + ki) * ho + i) * wo + j];
            db[ki] += g;
            for (int ci = 0; ci < cg; ci++)
            for (int u = 0; u < spec.KernelH; u++)
            for (int v = 0; v < spec.KernelW; v++)
            {
                int r = i * spec.StrideH - spec.PadH + u * spec.DilationH, q = j * spec.StrideW - spec.PadW + v * spec.DilationW;
                if (r < 0 || r >= h || q < 0 || q >= wd) continue;
                int channel = ki / kg * cg + ci;
                int wi = ((ki * cg + ci) * spec.KernelH + u) * spec.KernelW + v, xi = ((ni * c + channel) * h + r) * wd + q;
                dw[wi] += g * X[xi];
                dx[xi] += g * W[wi];
            }
        }
        return new ConvGradients(needDx ? Make(x.Shape, x.DType, dx) : null, Make(w.Shape, w.DType, dw), Make(new Shape(k), w.DType, db));
    }

    /// <summary>Max (first maximum wins, a NaN wins over numbers, the last NaN over earlier ones), average or L2 over each window.</summary>
    public PoolResult Pool2d(ITensor x, PoolSpec spec)
    {
        var ys = OpChecks.Pool2d(this, x, spec);
        var X = D(x);
        int h = x.Shape.H, wd = x.Shape.W;
        var y = new double[ys.Count];
        var sw = spec.Mode == PoolMode.Max ? new double[ys.Count] : null;
        int o = 0;
        for (int plane = 0; plane < x.Shape.N * x.Shape.C; plane++)
        for (int i = 0; i < ys.H; i++)
        for (int j = 0; j < ys.W; j++, o++)
        {
            var window = Window(spec, i, j, h, wd);
            double best = double.NegativeInfinity, sum = 0;
            long arg = window.Cells[0].R * wd + window.Cells[0].Q;
            foreach (var (r, q) in window.Cells)
            {
                double v = X[(plane * h + r) * wd + q];
                if (v > best || double.IsNaN(v))
                {
                    best = v;
                    arg = r * wd + q;
                }
                sum += spec.Mode == PoolMode.L2 ? v * v : v;
            }
            y[o] = spec.Mode switch
            {
                PoolMode.Max => best,
                PoolMode.Average => sum / window.Divisor,
                _ => Math.Sqrt(sum),
            };
            if (sw is not null) sw[o] = arg;
        }
        var yt = Make(ys, x.DType, y);
        return new PoolResult(yt, sw is null ? null : new Tensor(this, ys, DType.Int64, sw));
    }

    public ITensor Pool2dBackward(ITensor dy, ITensor x, PoolResult forward, PoolSpec spec)
    {
        var ys = OpChecks.Pool2dBackward(this, dy, x, forward, spec);
        var (X, DY, Y) = (D(x), D(dy), D(forward.Y));
        int h = x.Shape.H, wd = x.Shape.W;
        var dx = new double[x.Shape.Count];
        int o = 0;
        for (int plane = 0; plane < x.Shape.N * x.Shape.C; plane++)
        for (int i = 0; i < ys.H; i++)
        for (int j = 0; j < ys.W; j++, o++)
        {
            if (spec.Mode == PoolMode.Max)
            {
                dx[plane * h * wd + (long)D(forward.Switches!)[o]] += DY[o];
                continue;
            }
            var window = Window(spec, i, j, h, wd);
            foreach (var (r, q) in window.Cells)
            {
                int xi = (plane * h + r) * wd + q;
                dx[xi] += spec.Mode == PoolMode.Average
                    ? DY[o] / window.Divisor
                    : Y[o] == 0 ? 0 : DY[o] * X[xi] / Y[o];
            }
        }
        return Make(x.Shape, x.DType, dx);
    }

    private readonly record struct PoolWindow(List<(int R, int Q)> Cells, double Divisor);

    /// <summary>The input cells of window (i, j) in row-major order and the average's divisor (libtorch's and ONNX's
    /// rule: the taps inside the input, or, with CountIncludePad, the taps inside the padded extent [−P_begin, size + P_end)).</summary>
    private static PoolWindow Window(PoolSpec spec, int i, int j, int h, int w)
    {
        int r0 = i * spec.StrideH - spec.PadH, q0 = j * spec.StrideW - spec.PadW;
        var cells = new List<(int, int)>();
        int padded = 0;
        for (int u = 0; u < spec.KernelH; u++)
        for (int v = 0; v < spec.KernelW; v++)
        {
            int r = r0 + u * spec.DilationH, q = q0 + v * spec.DilationW;
            if (r < h + spec.Padding.Bottom && q < w + spec.Padding.Right) padded++;
            if (r >= 0 && r < h && q >= 0 && q < w) cells.Add((r, q));
        }
        return new PoolWindow(cells, spec.CountIncludePad ? padded : cells.Count);
    }

    /// <summary>y[n,o] = b[o] + Σ_i x[n,i] · w[o,i].</summary>
    public ITensor Linear(ITensor x, ITensor w, ITensor? b)
    {
        var ys = OpChecks.Linear(this, x, w, b);
        var (X, W, B) = (D(x), D(w), b is null ? null : D(b));
        int n = ys[0], outs = ys[1], ins = w.Shape[1];
        var y = new double[ys.Count];
        for (int ni = 0; ni < n; ni++)
        for (int o = 0; o < outs; o++)
        {
            double sum = B?[o] ?? 0;
            for (int i = 0; i < ins; i++) sum += X[ni * ins + i] * W[o * ins + i];
            y[ni * outs + o] = sum;
        }
        return Make(ys, x.DType, y);
    }

    public LinearGradients LinearBackward(ITensor dy, ITensor x, ITensor w, bool needDx)
    {
        var ys = OpChecks.LinearBackward(this, dy, x, w);
        var (X, W, DY) = (D(x), D(w), D(dy));
        int n = ys[0], outs = ys[1], ins = w.Shape[1];
        var dx = new double[x.Shape.Count];
        var dw = new double[w.Shape.Count];
        var db = new double[outs];
        for (int ni = 0; ni < n; ni++)
        for (int o = 0; o < outs; o++)
        {
            double g = DY[ni * outs + o];
            db[o] += g;
            for (int i = 0; i < ins; i++)
            {
                dw[o * ins + i] += g * X[ni * ins + i];
                dx[ni * ins + i] += g * W[o * ins + i];
            }
        }
        return new LinearGradients(needDx ? Make(x.Shape, x.DType, dx) : null, Make(w.Shape, w.DType, dw), Make(new Shape(outs), w.DType, db));
    }

    public ITensor Relu(ITensor x)
    {
        OpChecks.Unary(this, x, "RELU");
        return Make(x.Shape, x.DType, Array.ConvertAll(D(x), v => double.IsNaN(v) ? v : Math.Max(0, v)));
    }

    public ITensor ReluBackward(ITensor dy, ITensor x)
    {
        OpChecks.UnaryBackward(this, dy, x, "RELU");
        var (X, DY) = (D(x), D(dy));
        var dx = new double[X.Length];
        for (int i = 0; i < X.Length; i++) dx[i] = X[i] > 0 ? DY[i] : 0;
        return Make(x.Shape, x.DType, dx);
    }

    public LossResult SoftmaxCrossEntropy(ITensor scores, ReadOnlySpan<int> labels)
    {
        OpChecks.Loss(this, scores, labels, "SOFTMAX");
        var S = D(scores);
        int n = scores.Shape[0], classes = scores.Shape[1];
        var ds = new double[S.Length];
        double loss = 0;
        for (int i = 0; i < n; i++)
        {
            double max = double.NegativeInfinity;
            for (int j = 0; j < classes; j++) max = Math.Max(max, S[i * classes + j]);
            double z = 0;
            for (int j = 0; j < classes; j++) z += Math.Exp(S[i * classes + j] - max);
            loss += Math.Log(z) - (S[i * classes + labels[i]] - max);
            for (int j = 0; j < classes; j++)
            {
                ds[i * classes + j] = (Math.Exp(S[i * classes + j] - max) / z - (j == labels[i] ? 1 : 0)) / n;
            }
        }
        return new LossResult(loss / n, Make(scores.Shape, scores.DType, ds));
    }

    public LossResult MulticlassSvm(ITensor scores, ReadOnlySpan<int> labels)
    {
        OpChecks.Loss(this, scores, labels, "SVM");
        var S = D(scores);
        int n = scores.Shape[0], classes = scores.Shape[1];
        var ds = new double[S.Length];
        double loss = 0;
        for (int i = 0; i < n; i++)
        {
            double sy = S[i * classes + labels[i]];
            for (int j = 0; j < classes; j++)
            {
                if (j == labels[i]) continue;
                double margin = S[i * classes + j] - sy + 1;
                if (margin <= 0) continue;
                loss += margin;
                ds[i * classes + j] += 1.0 / n;
                ds[i * classes + labels[i]] -= 1.0 / n;
            }
        }
        return new LossResult(loss / n, Make(scores.Shape, scores.DType, ds));
    }

    /// <summary>t = g + wd·p; t = lr·t; v = momentum·v − t; p = p + v — each step rounded to the dtype.</summary>
    public void SgdStep(ITensor param, ITensor grad, ITensor velocity, double learningRate, double momentum, double weightDecay)
    {
        OpChecks.Sgd(this, param, grad, velocity, learningRate, momentum, weightDecay);
        var (P, G, V) = (D(param), D(grad), D(velocity));
        bool single = param.DType == DType.Float32;
        double R(double v) => single ? (float)v : v;
        double lr = R(learningRate), mu = R(momentum), wd = R(weightDecay);
        for (int i = 0; i < P.Length; i++)
        {
            double t = R(G[i] + R(wd * P[i]));
            t = R(lr * t);
            V[i] = R(R(mu * V[i]) - t);
            P[i] = R(P[i] + V[i]);
        }
    }

    public void Synchronize() { }

    public void Dispose() { }
}

/// <summary>Registers the naive oracle by name ("naive"), e.g. for <c>lockstep check --backends naive,torch</c>.</summary>
public sealed class NaiveBackendFactory : Lockstep.Configuration.IBackendFactory
{
    public string Name => "naive";

    public IBackend Create(Lockstep.Configuration.LockstepOptions options) => new NaiveBackend();
}
