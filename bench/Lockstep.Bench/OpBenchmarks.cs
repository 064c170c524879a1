using BenchmarkDotNet.Attributes;
using Lockstep.Configuration;

namespace Lockstep.Bench;

/// <summary>
/// The primitive ops of <see cref="IBackend"/> per backend and shape, float32. Each benchmark disposes what the op
/// returns, as a training step does, so the memory diagnoser's "Allocated" is what one op costs the GC heap once warm.
/// The <c>…Into</c> benchmarks run the destination overloads into tensors made once in the setup, as a
/// <c>Network</c> step does: what the op itself allocates, without the result's tensor objects.
/// Shapes: VGG16's conv3-64 block at 56×56 (N 2), AlexNet conv1 (N 8) and the CIFAR 5×5 conv (N 64); pooling 2×2/2 and
/// FC 25088→4096 from VGG16.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "BenchmarkDotNet's [GlobalCleanup] disposes them")]
public class OpBenchmarks
{
    private IBackend _backend = null!;
    private ITensor _x = null!, _w = null!, _b = null!, _dy = null!;
    private ITensor _px = null!, _pdy = null!;
    private PoolResult _pooled = null!;
    private ITensor _fx = null!, _fw = null!, _fb = null!, _fdy = null!;
    private ITensor _y = null!, _py = null!, _pdx = null!, _fy = null!, _ry = null!;
    private ConvGradients _grads = null!;
    private PoolResult _pooledInto = null!;
    private LinearGradients _fgrads = null!;
    private ConvSpec _conv = null!;
    private PoolSpec _pool = null!;

    [Params("managed", "torch")]
    public string Backend { get; set; } = "managed";

    [Params("vgg-conv3-64@56 N2", "alexnet-conv1 N8", "cifar-conv5-16 N64")]
    public string Shape { get; set; } = "vgg-conv3-64@56 N2";

    [GlobalSetup]
    public void Setup()
    {
        var options = LockstepConfiguration.Bind(LockstepConfiguration.Build([]));
        _backend = Backends.Create(Cli.DefaultRegistry(), options, Backend);
        var rng = new Random(1);
        ITensor T(params int[] dims)
        {
            var shape = new Shape(dims);
            var data = new float[shape.Count];
            for (int i = 0; i < data.Length; i++) data[i] = (float)(rng.NextDouble() * 2 - 1);
            return _backend.Upload<float>(data, shape);
        }
        var (n, c, hw, k, f, s, p) = Shape switch
        {
            "alexnet-conv1 N8" => (8, 3, 227, 96, 11, 4, 0),
            "cifar-conv5-16 N64" => (64, 3, 32, 16, 5, 1, 2),
            _ => (2, 64, 56, 64, 3, 1, 1),
        };
        _conv = ConvSpec.Square(f, s, p);
        int outHw = (hw - f + 2 * p) / s + 1;
        (_x, _w, _b, _dy) = (T(n, c, hw, hw), T(k, c, f, f), T(k), T(n, k, outHw, outHw));
        _pool = PoolSpec.Square(PoolMode.Max, 2, 2);
        _px = T(n, k, outHw / 2 * 2, outHw / 2 * 2);
        _pdy = T(n, k, outHw / 2, outHw / 2);
        _pooled = _backend.Pool2d(_px, _pool);
        (_fx, _fw, _fb, _fdy) = (T(n, 25088 / 49, 7, 7), T(4096, 25088), T(4096), T(n, 4096));
        ITensor Zeros(Shape shape) => _backend.Zeros(shape, DType.Float32);
        (_y, _ry) = (Zeros(_dy.Shape), Zeros(_x.Shape));
        _grads = new ConvGradients(Zeros(_x.Shape), Zeros(_w.Shape), Zeros(_b.Shape));
        _pooledInto = new PoolResult(Zeros(_pdy.Shape), _backend.Zeros(_pdy.Shape, DType.Int64));
        (_py, _pdx) = (_pooledInto.Y, Zeros(_px.Shape));
        _fy = Zeros(_fdy.Shape);
        _fgrads = new LinearGradients(Zeros(_fx.Shape), Zeros(_fw.Shape), Zeros(_fb.Shape));
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var t in new IDisposable[] { _x, _w, _b, _dy, _px, _pdy, _pooled, _fx, _fw, _fb, _fdy, _y, _ry, _grads, _pooledInto, _pdx, _fy, _fgrads })
        {
            t.Dispose();
        }
        _backend.Dispose();
    }

    /// <summary>
    /// A control that allocates nothing and takes about as long as a small op (a spin of ~0.3 ms, then the backend's
    /// Synchronize): what the memory diagnoser reads in this process for an op that allocates nothing, so an op's cell
    /// can be read against it (an event the diagnoser counts once per measured iteration shows here too).
    /// </summary>
    [Benchmark]
    public void Control()
    {
        Thread.SpinWait(100_000);
        _backend.Synchronize();
    }

    [Benchmark]
    public void Conv2d()
    {
        _backend.Conv2d(_x, _w, _b, _conv).Dispose();
        _backend.Synchronize();
    }

    [Benchmark]
    public void Conv2dBackward()
    {
        _backend.Conv2dBackward(_dy, _x, _w, _conv, needDx: true).Dispose();
        _backend.Synchronize();
    }

    [Benchmark]
    public void Pool2d()
    {
        _backend.Pool2d(_px, _pool).Dispose();
        _backend.Synchronize();
    }

    [Benchmark]
    public void Pool2dBackward()
    {
        _backend.Pool2dBackward(_pdy, _px, _pooled, _pool).Dispose();
        _backend.Synchronize();
    }

    [Benchmark]
    public void Linear()
    {
        _backend.Linear(_fx, _fw, _fb).Dispose();
        _backend.Synchronize();
    }

    [Benchmark]
    public void LinearBackward()
    {
        _backend.LinearBackward(_fdy, _fx, _fw, needDx: true).Dispose();
        _backend.Synchronize();
    }

    [Benchmark]
    public void Relu()
    {
        _backend.Relu(_x).Dispose();
        _backend.Synchronize();
    }

    [Benchmark]
    public void ReluBackward()
    {
        _backend.ReluBackward(_x, _x).Dispose();
        _backend.Synchronize();
    }

    [Benchmark]
    public void Conv2dInto()
    {
        _backend.Conv2d(_x, _w, _b, _conv, _y);
        _backend.Synchronize();
    }

    [Benchmark]
    public void Conv2dBackwardInto()
    {
        _backend.Conv2dBackward(_dy, _x, _w, _conv, _grads);
        _backend.Synchronize();
    }

    [Benchmark]
    public void Pool2dInto()
    {
        _backend.Pool2d(_px, _pool, _pooledInto);
        _backend.Synchronize();
    }

    [Benchmark]
    public void Pool2dBackwardInto()
    {
        _backend.Pool2dBackward(_pdy, _px, _pooled, _pool, _pdx);
        _backend.Synchronize();
    }

    [Benchmark]
    public void LinearInto()
    {
        _backend.Linear(_fx, _fw, _fb, _fy);
        _backend.Synchronize();
    }

    [Benchmark]
    public void LinearBackwardInto()
    {
        _backend.LinearBackward(_fdy, _fx, _fw, _fgrads);
        _backend.Synchronize();
    }

    [Benchmark]
    public void ReluInto()
    {
        _backend.Relu(_x, _ry);
        _backend.Synchronize();
    }

    [Benchmark]
    public void ReluBackwardInto()
    {
        _backend.ReluBackward(_x, _x, _ry);
        _backend.Synchronize();
    }
}
