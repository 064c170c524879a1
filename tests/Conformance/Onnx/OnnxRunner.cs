using System.Globalization;

namespace Lockstep.Conformance.Onnx;

/// <summary>One output of a case: what the backend gave and what ONNX expects, compared with ONNX's tolerance (or exactly, for indices).</summary>
public sealed record OnnxComparison(string Output, double[] Actual, double[] Expected, bool Exact)
{
    /// <summary>ONNX's backend-test tolerance: |a − e| ≤ atol + rtol·|e| per element.</summary>
    public const double Atol = 1e-7, Rtol = 1e-3;

    public double MaxAbsoluteError =>
        Actual.Zip(Expected, (a, e) => Math.Abs(a - e)).DefaultIfEmpty(0).Max();

    /// <summary>Null when every element agrees; else the count and the worst element (relative to its allowance).</summary>
    public string? Failure()
    {
        if (Actual.Length != Expected.Length) return $"{Output}: {Actual.Length} values, ONNX expects {Expected.Length}";
        int bad = 0, worst = -1;
        double worstRatio = 0;
        for (int i = 0; i < Actual.Length; i++)
        {
            double a = Actual[i], e = Expected[i], allowed = Exact ? 0 : Atol + Rtol * Math.Abs(e);
            double diff = double.IsNaN(a) || double.IsNaN(e) ? (double.IsNaN(a) && double.IsNaN(e) ? 0 : double.PositiveInfinity) : Math.Abs(a - e);
            if (diff <= allowed) continue;
            bad++;
            double ratio = allowed == 0 ? double.PositiveInfinity : diff / allowed;
            if (worst < 0 || ratio > worstRatio) (worst, worstRatio) = (i, ratio);
        }
        if (bad == 0) return null;
        string bound = Exact ? "exactly" : $"|a - e| <= {Atol:G1} + {Rtol:G1}·|e|";
        return string.Create(CultureInfo.InvariantCulture,
            $"{Output}: {bad} of {Actual.Length} elements outside {bound}; worst [{worst}]: actual {Actual[worst]:R}, expected {Expected[worst]:R}, |diff| {Math.Abs(Actual[worst] - Expected[worst]):G3}");
    }
}

/// <summary>
/// Maps an ONNX node onto <see cref="IBackend"/> ops, in float32 (the corpus's dtype):
/// Conv → Conv2d (pads / auto_pad SAME_* → per-side padding, dilations, group; sizes floor, as ONNX);
/// MaxPool / AveragePool → Pool2d (ceil_mode → SizeRule.Ceil, count_include_pad, dilations; Indices ↔ switches);
/// GlobalMaxPool / GlobalAveragePool → Pool2d with <see cref="PoolSpec.Global(PoolMode, Shape, string)"/>;
/// Gemm → Linear(A', B'ᵀ) for the product; alpha·P + beta·C on the host unless alpha = beta = 1 and C is a row of N,
/// which goes in as Linear's bias (IBackend has no scaled GEMM; transposes are host data movement);
/// MatMul → Linear(A, Bᵀ); Relu → Relu (any rank);
/// Softmax → SoftmaxCrossEntropy one row at a time (N = 1), twice with different labels: dS = softmax(s) − onehot(y) is
/// then, off the label, the backend's probability itself (p − 0, divided by 1: exact), so every p_j comes from a run whose
/// label is not j. No IBackend op is added for it.
/// </summary>
public static class OnnxRunner
{
    private static readonly string[] SpatialOps = ["Conv", "MaxPool", "AveragePool", "GlobalMaxPool", "GlobalAveragePool"];

    /// <summary>Why a case cannot run on IBackend, or null when it can.</summary>
    public static string? WhyNotApplicable(OnnxCase c)
    {
        ArgumentNullException.ThrowIfNull(c);
        if (c.Inputs.Concat(c.Outputs).FirstOrDefault(t => t.DType != "float32" && !(c.Op == "MaxPool" && t.Index == 1 && t.DType == "int64")) is { } odd)
        {
            return $"{odd.Name} is {odd.DType}; IBackend computes in float32 and float64";
        }
        int rank = c.Inputs[0].Dims.Length;
        switch (c.Op)
        {
            case var op when SpatialOps.Contains(op):
                return rank == 4 ? null : $"{op} over {rank - 2}-D input {c.Inputs[0].ShapeText}: IBackend's convolution and pooling are 2-D (NCHW)";
            case "Gemm":
            case "MatMul":
                return c.Inputs.Take(2).All(t => t.Dims.Length == 2) ? null : $"{c.Op} with operands that are not matrices";
            case "Softmax":
                if (rank != 2) return $"Softmax on rank-{rank} input: IBackend's softmax is over the classes of [N, classes]";
                int axis = c.Int("axis", c.Opset >= 13 ? -1 : 1);
                if (axis is not (1 or -1)) return $"Softmax over axis {axis}: IBackend's softmax is over the last axis";
                return c.Inputs[0].Dims[1] < 2 ? "Softmax over a single class (no second label for the one-hot trick)" : null;
            case "Relu":
                return null;
            default:
                return $"op {c.Op} has no IBackend counterpart";
        }
    }

    /// <summary>Runs the case on <paramref name="backend"/> and pairs each output with ONNX's expectation.</summary>
    public static IReadOnlyList<OnnxComparison> Run(IBackend backend, OnnxCase c)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(c);
        if (WhyNotApplicable(c) is { } reason) throw new InvalidOperationException($"{c.Folder}: not applicable: {reason}");
        var expected = c.ReadFloats(c.Outputs[0]);
        return c.Op switch
        {
            "Conv" => [new("y", Conv(backend, c), expected, false)],
            "MaxPool" or "AveragePool" or "GlobalMaxPool" or "GlobalAveragePool" => Pool(backend, c, expected),
            "Gemm" => [new("y", Gemm(backend, c), expected, false)],
            "MatMul" => [new("y", MatMul(backend, c), expected, false)],
            "Relu" => [new("y", Relu(backend, c), expected, false)],
            "Softmax" => [new("y", Softmax(backend, c), expected, false)],
            _ => throw new InvalidOperationException($"{c.Folder}: op {c.Op}"),
        };
    }

    /// <summary>How the case maps onto IBackend, for the test output.</summary>
    public static string Describe(OnnxCase c)
    {
        ArgumentNullException.ThrowIfNull(c);
        return c.Op switch
        {
            "Conv" => $"Conv2d {ConvSpecOf(c)}",
            "MaxPool" or "AveragePool" => $"Pool2d {PoolSpecOf(c, Shape(c.Inputs[0]))}",
            "GlobalMaxPool" or "GlobalAveragePool" => $"Pool2d {PoolSpecOf(c, Shape(c.Inputs[0]))} (global)",
            "Gemm" => GemmBiasOnBackend(c) ? "Linear(A', B'ᵀ, C as bias)" : "Linear(A', B'ᵀ), then alpha·P + beta·C on the host",
            "MatMul" => "Linear(A, Bᵀ)",
            "Softmax" => "SoftmaxCrossEntropy per row, probabilities from dScores off the label",
            _ => c.Op,
        };
    }

    private static Shape Shape(OnnxTensorInfo t) => new(t.Dims);

    private static ITensor Input(IBackend backend, OnnxCase c, int k) => Input(backend, c.ReadFloats(c.Inputs[k]), Shape(c.Inputs[k]));

    private static ITensor Input(IBackend backend, double[] data, Shape shape) => backend.Upload(data, shape, DType.Float32);

    /// <summary>Per-side padding from pads [top, left, bottom, right] or auto_pad (SAME_UPPER puts the odd one at the end, SAME_LOWER at the start).</summary>
    private static Padding2d PaddingOf(OnnxCase c, int h, int w, int kh, int kw, int sh, int sw, int dh, int dw)
    {
        string autoPad = c.String("auto_pad") ?? "NOTSET";
        switch (autoPad)
        {
            case "NOTSET":
                var pads = c.Ints("pads") ?? [0, 0, 0, 0];
                return new Padding2d(pads[0], pads[1], pads[2], pads[3]);
            case "VALID":
                return default;
            case "SAME_UPPER":
            case "SAME_LOWER":
                var (top, bottom) = Same(h, kh, sh, dh, autoPad == "SAME_LOWER");
                var (left, right) = Same(w, kw, sw, dw, autoPad == "SAME_LOWER");
                return new Padding2d(top, left, bottom, right);
            default:
                throw new InvalidDataException($"{c.Folder}: unknown auto_pad '{autoPad}'");
        }

        // out = ceil(in / s); total = max(0, (out − 1)·s + (k − 1)·d + 1 − in)
        static (int Begin, int End) Same(int input, int k, int s, int d, bool lower)
        {
            int output = (input + s - 1) / s;
            int total = Math.Max(0, (output - 1) * s + (k - 1) * d + 1 - input);
            int begin = lower ? (total + 1) / 2 : total / 2;
            return (begin, total - begin);
        }
    }

    private static ConvSpec ConvSpecOf(OnnxCase c)
    {
        var x = c.Inputs[0].Dims;
        var wDims = c.Inputs[1].Dims;
        var k = c.Ints("kernel_shape") ?? [wDims[2], wDims[3]];
        var s = c.Ints("strides") ?? [1, 1];
        var d = c.Ints("dilations") ?? [1, 1];
        var padding = PaddingOf(c, x[2], x[3], k[0], k[1], s[0], s[1], d[0], d[1]);
        return new ConvSpec(k[0], k[1], s[0], s[1], padding, SizeRule.Floor, c.Folder, d[0], d[1], c.Int("group", 1));
    }

    private static double[] Conv(IBackend backend, OnnxCase c)
    {
        using var x = Input(backend, c, 0);
        using var w = Input(backend, c, 1);
        using var b = c.Inputs.Count > 2 ? Input(backend, c, 2) : null;
        using var y = backend.Conv2d(x, w, b, ConvSpecOf(c));
        return y.ToDoubles();
    }

    private static PoolSpec PoolSpecOf(OnnxCase c, Shape input)
    {
        var mode = c.Op.Contains("Max", StringComparison.Ordinal) ? PoolMode.Max : PoolMode.Average;
        if (c.Op.StartsWith("Global", StringComparison.Ordinal)) return PoolSpec.Global(mode, input, c.Folder);
        var k = c.Ints("kernel_shape") ?? throw new InvalidDataException($"{c.Folder}: {c.Op} without kernel_shape");
        var s = c.Ints("strides") ?? [1, 1];
        var d = c.Ints("dilations") ?? [1, 1];
        var padding = PaddingOf(c, input.H, input.W, k[0], k[1], s[0], s[1], d[0], d[1]);
        var rule = c.Int("ceil_mode", 0) == 1 ? SizeRule.Ceil : SizeRule.Floor;
        return new PoolSpec(mode, k[0], k[1], s[0], s[1], padding, rule, c.Int("count_include_pad", 0) == 1, c.Folder, d[0], d[1]);
    }

    private static List<OnnxComparison> Pool(IBackend backend, OnnxCase c, double[] expected)
    {
        var shape = Shape(c.Inputs[0]);
        var spec = PoolSpecOf(c, shape);
        using var x = Input(backend, c, 0);
        using var result = backend.Pool2d(x, spec);
        var comparisons = new List<OnnxComparison> { new("y", result.Y.ToDoubles(), expected, false) };
        if (c.Outputs.Count > 1)
        {
            // Switches are h·W + w within each plane; ONNX's Indices are flat over the whole tensor, and with storage_order = 1
            // column-major over (h, w): both become flat row-major indices, compared exactly.
            int h = shape.H, w = shape.W, plane = h * w, outPlane = result.Y.Shape.H * result.Y.Shape.W;
            bool columnMajor = c.Int("storage_order", 0) == 1;
            var switches = result.Switches!.ToArray<long>();
            var actual = switches.Select((s, o) => (double)((long)(o / outPlane) * plane + s)).ToArray();
            var indices = c.ReadInt64s(c.Outputs[1]).Select(i =>
            {
                long p = i / plane, within = i % plane;
                return (double)(p * plane + (columnMajor ? within % h * w + within / h : within));
            }).ToArray();
            comparisons.Add(new("indices", actual, indices, true));
        }
        return comparisons;
    }

    /// <summary>C goes in as Linear's bias when the product is unscaled and C holds one value per output column.</summary>
    private static bool GemmBiasOnBackend(OnnxCase c)
    {
        if (c.Inputs.Count < 3 || c.Float("alpha", 1f) != 1f || c.Float("beta", 1f) != 1f) return false;
        var b = c.Inputs[1].Dims;
        int n = c.Int("transB", 0) == 1 ? b[0] : b[1];
        var cd = c.Inputs[2].Dims;
        return (cd.Length == 1 && cd[0] == n) || (cd.Length == 2 && cd[0] == 1 && cd[1] == n);
    }

    // Y = alpha·A'·B' + beta·C with A' = transA ? Aᵀ : A, B' = transB ? Bᵀ : B; Linear(x, w) = x·wᵀ, so x = A', w = B'ᵀ.
    private static double[] Gemm(IBackend backend, OnnxCase c)
    {
        var (aDims, bDims) = (c.Inputs[0].Dims, c.Inputs[1].Dims);
        bool transA = c.Int("transA", 0) == 1, transB = c.Int("transB", 0) == 1;
        var a = c.ReadFloats(c.Inputs[0]);
        var b = c.ReadFloats(c.Inputs[1]);
        var (xData, m, k) = transA ? (Transpose(a, aDims[0], aDims[1]), aDims[1], aDims[0]) : (a, aDims[0], aDims[1]);
        var (wData, n) = transB ? (b, bDims[0]) : (Transpose(b, bDims[0], bDims[1]), bDims[1]);
        bool biasOnBackend = GemmBiasOnBackend(c);
        using var x = Input(backend, xData, new Shape(m, k));
        using var w = Input(backend, wData, new Shape(n, k));
        using var bias = biasOnBackend ? Input(backend, c.ReadFloats(c.Inputs[2]), new Shape(n)) : null;
        using var y = backend.Linear(x, w, bias);
        var product = y.ToDoubles();
        if (biasOnBackend) return product;

        double alpha = c.Float("alpha", 1f), beta = c.Float("beta", 1f);
        var cData = c.Inputs.Count > 2 ? c.ReadFloats(c.Inputs[2]) : null;
        var cDims = c.Inputs.Count > 2 ? c.Inputs[2].Dims : [];
        var result = new double[m * n];
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            double term = cData is null ? 0 : beta * cData[Broadcast(cDims, i, j)];
            result[i * n + j] = (float)(alpha * product[i * n + j] + term);
        }
        return result;

        // numpy's one-way broadcast of C ([], [1], [N], [1, N], [M, 1], [M, N]) to [M, N]
        static int Broadcast(int[] dims, int i, int j) => dims.Length switch
        {
            0 => 0,
            1 => dims[0] == 1 ? 0 : j,
            _ => (dims[0] == 1 ? 0 : i) * dims[1] + (dims[1] == 1 ? 0 : j),
        };
    }

    private static double[] MatMul(IBackend backend, OnnxCase c)
    {
        var bDims = c.Inputs[1].Dims;
        using var x = Input(backend, c, 0);
        using var w = Input(backend, Transpose(c.ReadFloats(c.Inputs[1]), bDims[0], bDims[1]), new Shape(bDims[1], bDims[0]));
        using var y = backend.Linear(x, w, null);
        return y.ToDoubles();
    }

    private static double[] Relu(IBackend backend, OnnxCase c)
    {
        using var x = Input(backend, c, 0);
        using var y = backend.Relu(x);
        return y.ToDoubles();
    }

    private static double[] Softmax(IBackend backend, OnnxCase c)
    {
        var dims = c.Inputs[0].Dims;
        int rows = dims[0], classes = dims[1];
        var s = c.ReadFloats(c.Inputs[0]);
        var p = new double[s.Length];
        for (int i = 0; i < rows; i++)
        {
            using var row = Input(backend, s.AsSpan(i * classes, classes).ToArray(), new Shape(1, classes));
            using var label0 = backend.SoftmaxCrossEntropy(row, [0]);
            using var label1 = backend.SoftmaxCrossEntropy(row, [1]);
            var (d0, d1) = (label0.DScores.ToDoubles(), label1.DScores.ToDoubles());
            for (int j = 0; j < classes; j++) p[i * classes + j] = j == 0 ? d1[0] : d0[j];
        }
        return p;
    }

    private static double[] Transpose(double[] data, int rows, int cols)
    {
        var t = new double[data.Length];
        for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++)
            t[j * rows + i] = data[i * cols + j];
        return t;
    }
}
