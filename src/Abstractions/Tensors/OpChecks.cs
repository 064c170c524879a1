using System.Collections.Concurrent;

namespace Lockstep;

/// <summary>
/// Argument and shape validation for every <see cref="IBackend"/> op. Backends call these before any kernel
/// runs, so that all backends reject bad input with the same message: the layer, what was expected, what came.
/// </summary>
public static class OpChecks
{
    /// <summary>Checks that a tensor is usable by <paramref name="backend"/> in <paramref name="op"/>.</summary>
    public static void Tensor(IBackend backend, ITensor? tensor, string op, string argument)
    {
        if (tensor is null) throw new ArgumentNullException(argument, $"{op}: {argument} is null");
        if (tensor.IsDisposed) throw new ObjectDisposedException(argument, $"{op}: {argument} was disposed");
        if (!ReferenceEquals(tensor.Backend, backend))
        {
            throw new ArgumentException(
                $"{op}: {argument} belongs to backend '{tensor.Backend.Name}', not '{backend.Name}'; copy it with tensor.CopyTo(backend)",
                argument);
        }
        if (!tensor.DType.IsFloating())
        {
            throw new ArgumentException($"{op}: {argument} must be Float32 or Float64, got {tensor.DType}", argument);
        }
    }

    private static void SameDType(string op, ITensor a, string aName, ITensor b, string bName)
    {
        if (a.DType != b.DType)
        {
            throw new ArgumentException($"{op}: {bName} is {b.DType} but {aName} is {a.DType}; all operands must share one dtype");
        }
    }

    private static void Rank(string op, string argument, Shape shape, int rank, string legend)
    {
        if (shape.Rank != rank)
        {
            throw new ArgumentException($"{op}: {argument} must be rank {rank} {legend}, got {shape}");
        }
    }

    private static void SameShape(string op, string argument, Shape actual, Shape expected)
    {
        if (actual != expected) throw new ArgumentException($"{op}: {argument}: expected {expected}, got {actual}");
    }

    /// <summary>
    /// Checks a caller-owned destination of an op: made by <paramref name="backend"/>, not disposed, of
    /// <paramref name="dtype"/> and <paramref name="shape"/>. Aliasing is checked by <see cref="NotAlias"/>.
    /// </summary>
    private static void Destination(IBackend backend, string op, string argument, ITensor? destination, Shape shape, DType dtype)
    {
        if (destination is null) throw new ArgumentNullException(argument, $"{op}: {argument} is null");
        if (destination.IsDisposed) throw new ObjectDisposedException(argument, $"{op}: {argument} was disposed");
        if (!ReferenceEquals(destination.Backend, backend))
        {
            throw new ArgumentException(
                $"{op}: {argument} belongs to backend '{destination.Backend.Name}', not '{backend.Name}'; " +
                $"make destinations on the backend that runs the op (backend.Zeros(shape, dtype))", argument);
        }
        if (destination.DType != dtype)
        {
            throw new ArgumentException($"{op}: {argument}: expected {dtype} (the op's dtype), got {destination.DType}", argument);
        }
        if (destination.Shape != shape) throw new ArgumentException($"{op}: {argument}: expected {shape}, got {destination.Shape}", argument);
    }

    /// <summary>A destination may not be one of the op's operands (or another of its destinations): the op would read what it overwrites.</summary>
    private static void NotAlias(string op, string argument, ITensor destination, ITensor? operand, string operandName)
    {
        if (ReferenceEquals(destination, operand))
        {
            throw new ArgumentException(
                $"{op}: {argument} is the same tensor as the {operandName}; an op may not overwrite its own operands " +
                "(only RELU runs in place: Relu(x, x), ReluBackward(dy, x, dy))", argument);
        }
    }

    private static void BiasShape(string op, Shape bias, int filters)
    {
        if (bias.Rank != 1 || bias[0] != filters) SameShape(op, "bias", bias, new Shape(filters));
    }

    /// <summary>The bias (and db) shape [K] of weights whose first dimension is K; one shared object per K.</summary>
    public static Shape Bias(Shape weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        return Shapes.Of(weights[0]);
    }

    /// <summary>
    /// The output shapes the checks return, one object per distinct shape (Shape is immutable), so that a step that
    /// repeats its shapes builds none. Bounded: past <see cref="Capacity"/> distinct shapes new ones are not kept.
    /// </summary>
    private static class Shapes
    {
        private const int Capacity = 4096;
        private static readonly ConcurrentDictionary<(int Rank, int A, int B, int C, int D), Shape> Cache = new();

        public static Shape Of(int n, int c, int h, int w) => Get((4, n, c, h, w));
        public static Shape Of(int n, int k) => Get((2, n, k, 0, 0));
        public static Shape Of(int k) => Get((1, k, 0, 0, 0));

        private static Shape Get((int Rank, int A, int B, int C, int D) key)
        {
            if (Cache.TryGetValue(key, out var shape)) return shape;
            shape = key.Rank switch
            {
                4 => Shape.Nchw(key.A, key.B, key.C, key.D),
                2 => new Shape(key.A, key.B),
                _ => new Shape(key.A),
            };
            if (Cache.Count < Capacity) Cache.TryAdd(key, shape);
            return shape;
        }
    }

    private static void NonEmptyBatch(string op, Shape x)
    {
        if (x.Rank > 0 && x[0] == 0) throw new ArgumentException($"{op}: the batch is empty (N = 0) in input {x}");
        if (x.Count == 0) throw new ArgumentException($"{op}: input {x} has no elements");
    }

    /// <summary>Validates a convolution and returns the output shape [N, K, H', W'].</summary>
    public static Shape Conv2d(IBackend backend, ITensor x, ITensor w, ITensor? b, ConvSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        string op = spec.Name;
        Tensor(backend, x, op, "input");
        Tensor(backend, w, op, "weights");
        SameDType(op, x, "input", w, "weights");
        Rank(op, "input", x.Shape, 4, "[N, C, H, W]");
        Rank(op, "weights", w.Shape, 4, spec.Groups == 1 ? "[K, C, F_h, F_w]" : "[K, C/groups, F_h, F_w]");
        NonEmptyBatch(op, x.Shape);
        if (spec.Groups == 1 && w.Shape[1] != x.Shape.C)
        {
            throw new ArgumentException(
                $"{op}: input channels: the weights {w.Shape} expect C = {w.Shape[1]}, the input {x.Shape} has C = {x.Shape.C}");
        }
        if (spec.Groups > 1) Groups(op, x.Shape, w.Shape, spec.Groups);
        if (w.Shape[2] != spec.KernelH || w.Shape[3] != spec.KernelW)
        {
            throw new ArgumentException(
                $"{op}: weights {w.Shape} have a {w.Shape[2]}×{w.Shape[3]} kernel, the spec says {spec.KernelH}×{spec.KernelW}");
        }
        if (b is not null)
        {
            Tensor(backend, b, op, "bias");
            SameDType(op, x, "input", b, "bias");
            BiasShape(op, b.Shape, w.Shape[0]);
        }
        var (h, wOut) = spec.OutputSize(x.Shape.H, x.Shape.W);
        return Shapes.Of(x.Shape.N, w.Shape[0], h, wOut);
    }

    /// <summary>Validates a convolution into <paramref name="destination"/> and returns the output shape [N, K, H', W'].</summary>
    public static Shape Conv2d(IBackend backend, ITensor x, ITensor w, ITensor? b, ConvSpec spec, ITensor destination)
    {
        var y = Conv2d(backend, x, w, b, spec);
        string op = spec.Name;
        Destination(backend, op, "destination", destination, y, x.DType);
        NotAlias(op, "destination", destination, x, "input");
        NotAlias(op, "destination", destination, w, "weights");
        NotAlias(op, "destination", destination, b, "bias");
        return y;
    }

    /// <summary>Grouped convolution: C and K split into <paramref name="groups"/> equal parts, weights [K, C/groups, F_h, F_w].</summary>
    private static void Groups(string op, Shape x, Shape w, int groups)
    {
        if (x.C % groups != 0)
        {
            throw new ArgumentException($"{op}: groups = {groups} must divide the input channels, the input {x} has C = {x.C}");
        }
        if (w[0] % groups != 0)
        {
            throw new ArgumentException($"{op}: groups = {groups} must divide the filters, the weights {w} have K = {w[0]}");
        }
        if (w[1] != x.C / groups)
        {
            throw new ArgumentException(
                $"{op}: input channels per group: the weights {w} expect C/groups = {w[1]}, the input {x} with groups = {groups} " +
                $"gives C/groups = {x.C / groups}");
        }
    }

    /// <summary>Validates a convolution's backward and returns the output shape dy must have.</summary>
    public static Shape Conv2dBackward(IBackend backend, ITensor dy, ITensor x, ITensor w, ConvSpec spec)
    {
        var y = Conv2d(backend, x, w, null, spec);
        Tensor(backend, dy, spec.Name, "output gradient");
        SameDType(spec.Name, x, "input", dy, "output gradient");
        SameShape(spec.Name, "output gradient", dy.Shape, y);
        return y;
    }

    /// <summary>Validates a convolution's backward into <paramref name="destination"/> (Dx null: no dx) and returns dy's shape.</summary>
    public static Shape Conv2dBackward(IBackend backend, ITensor dy, ITensor x, ITensor w, ConvSpec spec, ConvGradients destination)
    {
        var y = Conv2dBackward(backend, dy, x, w, spec);
        ArgumentNullException.ThrowIfNull(destination);
        Gradients(backend, spec.Name, dy, x, w, destination.Dx, destination.Dw, destination.Db);
        return y;
    }

    /// <summary>dx (when given) in x's shape, dw in w's, db [K]: none of them an operand or another of them.</summary>
    private static void Gradients(IBackend backend, string op, ITensor dy, ITensor x, ITensor w, ITensor? dx, ITensor dw, ITensor db)
    {
        if (dx is not null)
        {
            Destination(backend, op, "dx destination", dx, x.Shape, x.DType);
            Operands(op, "dx destination", dx, dy, x, w);
        }
        Destination(backend, op, "dw destination", dw, w.Shape, x.DType);
        Operands(op, "dw destination", dw, dy, x, w);
        NotAlias(op, "dw destination", dw, dx, "dx destination");
        Destination(backend, op, "db destination", db, Bias(w.Shape), x.DType);
        Operands(op, "db destination", db, dy, x, w);
    }

    private static void Operands(string op, string argument, ITensor destination, ITensor dy, ITensor x, ITensor w)
    {
        NotAlias(op, argument, destination, dy, "output gradient");
        NotAlias(op, argument, destination, x, "input");
        NotAlias(op, argument, destination, w, "weights");
    }

    /// <summary>Validates a pooling and returns the output shape [N, C, H', W'].</summary>
    public static Shape Pool2d(IBackend backend, ITensor x, PoolSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        Tensor(backend, x, spec.Name, "input");
        Rank(spec.Name, "input", x.Shape, 4, "[N, C, H, W]");
        NonEmptyBatch(spec.Name, x.Shape);
        var (h, w) = spec.OutputSize(x.Shape.H, x.Shape.W);
        return Shapes.Of(x.Shape.N, x.Shape.C, h, w);
    }

    /// <summary>
    /// Validates a pooling into <paramref name="destination"/>: Y of the output shape; Switches an Int64 tensor of the same
    /// shape for max pooling, null otherwise.
    /// </summary>
    public static Shape Pool2d(IBackend backend, ITensor x, PoolSpec spec, PoolResult destination)
    {
        var y = Pool2d(backend, x, spec);
        ArgumentNullException.ThrowIfNull(destination);
        string op = spec.Name;
        Destination(backend, op, "destination", destination.Y, y, x.DType);
        NotAlias(op, "destination", destination.Y, x, "input");
        if (spec.Mode == PoolMode.Max)
        {
            Destination(backend, op, "switches destination", destination.Switches, y, DType.Int64);
        }
        else if (destination.Switches is not null)
        {
            throw new ArgumentException(
                $"{op}: {spec.Mode.ToString().ToLowerInvariant()} pooling records no switches; give a destination whose Switches is null",
                nameof(destination));
        }
        return y;
    }

    /// <summary>Validates a pooling's backward against its forward result.</summary>
    public static Shape Pool2dBackward(IBackend backend, ITensor dy, ITensor x, PoolResult forward, PoolSpec spec)
    {
        ArgumentNullException.ThrowIfNull(forward);
        var y = Pool2d(backend, x, spec);
        Tensor(backend, dy, spec.Name, "output gradient");
        SameDType(spec.Name, x, "input", dy, "output gradient");
        SameShape(spec.Name, "output gradient", dy.Shape, y);
        Tensor(backend, forward.Y, spec.Name, "forward output");
        SameShape(spec.Name, "forward output", forward.Y.Shape, y);
        if (spec.Mode == PoolMode.Max)
        {
            if (forward.Switches is null) throw new ArgumentException($"{spec.Name}: max pooling backward needs the forward's switches");
            if (forward.Switches.IsDisposed) throw new ObjectDisposedException("switches", $"{spec.Name}: the forward's switches were disposed");
            if (!ReferenceEquals(forward.Switches.Backend, backend) || forward.Switches.DType != DType.Int64)
            {
                throw new ArgumentException(
                    $"{spec.Name}: switches must be Int64 indices from backend '{backend.Name}', got {forward.Switches.DType} from '{forward.Switches.Backend.Name}'");
            }
            SameShape(spec.Name, "switches", forward.Switches.Shape, y);
        }
        return y;
    }

    /// <summary>Validates a pooling's backward into <paramref name="destination"/> (x's shape).</summary>
    public static Shape Pool2dBackward(IBackend backend, ITensor dy, ITensor x, PoolResult forward, PoolSpec spec, ITensor destination)
    {
        var y = Pool2dBackward(backend, dy, x, forward, spec);
        string op = spec.Name;
        Destination(backend, op, "destination", destination, x.Shape, x.DType);
        NotAlias(op, "destination", destination, dy, "output gradient");
        NotAlias(op, "destination", destination, x, "input");
        NotAlias(op, "destination", destination, forward.Y, "forward output");
        return y;
    }

    /// <summary>Validates a linear layer and returns (in, out) with the output shape [N, out].</summary>
    public static Shape Linear(IBackend backend, ITensor x, ITensor w, ITensor? b, string op = "FC")
    {
        Tensor(backend, x, op, "input");
        Tensor(backend, w, op, "weights");
        SameDType(op, x, "input", w, "weights");
        Rank(op, "weights", w.Shape, 2, "[out, in]");
        if (x.Shape.Rank < 2) throw new ArgumentException($"{op}: input must be [N, in] or [N, C, H, W], got {x.Shape}");
        NonEmptyBatch(op, x.Shape);
        if (x.Shape.PerItem != w.Shape[1])
        {
            throw new ArgumentException(
                $"{op}: input features: the weights {w.Shape} expect in = {w.Shape[1]}, the input {x.Shape} has {x.Shape.PerItem} per item");
        }
        if (b is not null)
        {
            Tensor(backend, b, op, "bias");
            SameDType(op, x, "input", b, "bias");
            BiasShape(op, b.Shape, w.Shape[0]);
        }
        return Shapes.Of(x.Shape[0], w.Shape[0]);
    }

    /// <summary>Validates a linear layer into <paramref name="destination"/> [N, out].</summary>
    public static Shape Linear(IBackend backend, ITensor x, ITensor w, ITensor? b, ITensor destination, string op = "FC")
    {
        var y = Linear(backend, x, w, b, op);
        Destination(backend, op, "destination", destination, y, x.DType);
        NotAlias(op, "destination", destination, x, "input");
        NotAlias(op, "destination", destination, w, "weights");
        NotAlias(op, "destination", destination, b, "bias");
        return y;
    }

    public static Shape LinearBackward(IBackend backend, ITensor dy, ITensor x, ITensor w, string op = "FC")
    {
        var y = Linear(backend, x, w, null, op);
        Tensor(backend, dy, op, "output gradient");
        SameDType(op, x, "input", dy, "output gradient");
        SameShape(op, "output gradient", dy.Shape, y);
        return y;
    }

    /// <summary>Validates a linear layer's backward into <paramref name="destination"/> (Dx null: no dx).</summary>
    public static Shape LinearBackward(IBackend backend, ITensor dy, ITensor x, ITensor w, LinearGradients destination, string op = "FC")
    {
        var y = LinearBackward(backend, dy, x, w, op);
        ArgumentNullException.ThrowIfNull(destination);
        Gradients(backend, op, dy, x, w, destination.Dx, destination.Dw, destination.Db);
        return y;
    }

    public static void Unary(IBackend backend, ITensor x, string op)
    {
        Tensor(backend, x, op, "input");
        if (x.Shape.Count == 0) throw new ArgumentException($"{op}: input {x.Shape} has no elements");
    }

    public static void UnaryBackward(IBackend backend, ITensor dy, ITensor x, string op)
    {
        Unary(backend, x, op);
        Tensor(backend, dy, op, "output gradient");
        SameDType(op, x, "input", dy, "output gradient");
        SameShape(op, "output gradient", dy.Shape, x.Shape);
    }

    /// <summary>Validates an elementwise op into <paramref name="destination"/> (x's shape), which may be x itself (in place).</summary>
    public static void Unary(IBackend backend, ITensor x, string op, ITensor destination)
    {
        Unary(backend, x, op);
        Destination(backend, op, "destination", destination, x.Shape, x.DType);
    }

    /// <summary>Validates an elementwise backward into <paramref name="destination"/> (x's shape), which may be dy itself (in place), not x.</summary>
    public static void UnaryBackward(IBackend backend, ITensor dy, ITensor x, string op, ITensor destination)
    {
        UnaryBackward(backend, dy, x, op);
        Destination(backend, op, "destination", destination, x.Shape, x.DType);
        NotAlias(op, "destination", destination, x, "input");
    }

    /// <summary>Validates scores [N, classes] and labels (one per row, each in [0, classes)).</summary>
    public static void Loss(IBackend backend, ITensor scores, ReadOnlySpan<int> labels, string op)
    {
        Tensor(backend, scores, op, "scores");
        if (scores.Shape.Rank != 2) throw new ArgumentException($"{op}: scores must be [N, classes], got {scores.Shape}");
        NonEmptyBatch(op, scores.Shape);
        if (labels.Length != scores.Shape[0])
        {
            throw new ArgumentException($"{op}: expected {scores.Shape[0]} labels (one per row of scores {scores.Shape}), got {labels.Length}");
        }
        int classes = scores.Shape[1];
        for (int i = 0; i < labels.Length; i++)
        {
            if ((uint)labels[i] >= (uint)classes)
            {
                throw new ArgumentException($"{op}: label {i} is {labels[i]}, expected a class in [0, {classes})");
            }
        }
    }

    /// <summary>Validates a loss whose dScores go into <paramref name="dScores"/> (the scores' shape).</summary>
    public static void Loss(IBackend backend, ITensor scores, ReadOnlySpan<int> labels, string op, ITensor dScores)
    {
        Loss(backend, scores, labels, op);
        Destination(backend, op, "dScores destination", dScores, scores.Shape, scores.DType);
        NotAlias(op, "dScores destination", dScores, scores, "scores");
    }

    /// <summary>Validates a copy: both tensors of <paramref name="backend"/>, alive, of one shape and dtype (Int64 included).</summary>
    public static void Copy(IBackend backend, ITensor source, ITensor destination)
    {
        const string op = "Copy";
        if (source is null) throw new ArgumentNullException(nameof(source), $"{op}: source is null");
        if (source.IsDisposed) throw new ObjectDisposedException(nameof(source), $"{op}: source was disposed");
        if (!ReferenceEquals(source.Backend, backend))
        {
            throw new ArgumentException(
                $"{op}: source belongs to backend '{source.Backend.Name}', not '{backend.Name}'; copy it with tensor.CopyTo(backend)", nameof(source));
        }
        Destination(backend, op, "destination", destination, source.Shape, source.DType);
    }

    public static void Sgd(IBackend backend, ITensor param, ITensor grad, ITensor velocity,
        double learningRate, double momentum, double weightDecay)
    {
        const string op = "SGD";
        Tensor(backend, param, op, "parameter");
        Tensor(backend, grad, op, "gradient");
        Tensor(backend, velocity, op, "velocity");
        SameDType(op, param, "parameter", grad, "gradient");
        SameDType(op, param, "parameter", velocity, "velocity");
        SameShape(op, "gradient", grad.Shape, param.Shape);
        SameShape(op, "velocity", velocity.Shape, param.Shape);
        if (!double.IsFinite(learningRate) || learningRate < 0) throw new ArgumentException($"{op}: learning rate must be finite and ≥ 0, got {learningRate}");
        if (!double.IsFinite(momentum) || momentum < 0 || momentum >= 1) throw new ArgumentException($"{op}: momentum must be in [0, 1), got {momentum}");
        if (!double.IsFinite(weightDecay) || weightDecay < 0) throw new ArgumentException($"{op}: weight decay must be finite and ≥ 0, got {weightDecay}");
    }

    /// <summary>Validates a request for a new tensor of zeros.</summary>
    public static void Zeros(Shape shape, DType dtype)
    {
        ArgumentNullException.ThrowIfNull(shape);
        if (!Enum.IsDefined(dtype)) throw new ArgumentException($"Zeros: unknown dtype {(int)dtype}");
    }

    /// <summary>Validates an upload: the data length matches the shape, and the element type is supported.</summary>
    public static DType Upload<T>(int length, Shape shape) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(shape);
        var dtype = DTypes.Of<T>();
        if (length != shape.Count) throw new ArgumentException($"Upload: shape {shape} holds {shape.Count} elements, the data has {length}");
        return dtype;
    }

    /// <summary>Validates an upload into <paramref name="destination"/>: this backend's, alive, of the data's dtype and length.</summary>
    public static void Upload<T>(IBackend backend, int length, ITensor destination) where T : unmanaged
    {
        const string op = "Upload";
        if (destination is null) throw new ArgumentNullException(nameof(destination), $"{op}: destination is null");
        Destination(backend, op, "destination", destination, destination.Shape, DTypes.Of<T>());
        if (length != destination.Shape.Count)
        {
            throw new ArgumentException($"{op}: destination {destination.Shape} holds {destination.Shape.Count} elements, the data has {length}", nameof(destination));
        }
    }

    public static void Download<T>(IBackend backend, ITensor tensor, int length) where T : unmanaged
    {
        if (tensor is null) throw new ArgumentNullException(nameof(tensor), "Download: tensor is null");
        if (tensor.IsDisposed) throw new ObjectDisposedException(nameof(tensor), "Download: the tensor was disposed");
        if (!ReferenceEquals(tensor.Backend, backend)) throw new ArgumentException($"Download: the tensor belongs to backend '{tensor.Backend.Name}', not '{backend.Name}'");
        var dtype = DTypes.Of<T>();
        if (dtype != tensor.DType) throw new ArgumentException($"Download: the tensor is {tensor.DType}, the destination holds {typeof(T).Name}");
        if (length != tensor.Shape.Count) throw new ArgumentException($"Download: tensor {tensor.Shape} has {tensor.Shape.Count} elements, the destination {length}");
    }
}
