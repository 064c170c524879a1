namespace Lockstep.Layers;

/// <summary>CONV: x [N, C, H, W] → y [N, K, H', W'], weights [K, C, F_h, F_w], bias [K].</summary>
public sealed class Conv2d : Layer
{
    private readonly Parameter _weight;
    private readonly Parameter _bias;
    private ConvGradients? _destination;   // the tensors of the last destination backward, reused while they are the same

    public Conv2d(IBackend backend, ConvSpec spec, ITensor weight, ITensor bias) : base(backend, spec?.Name ?? "CONV")
    {
        ArgumentNullException.ThrowIfNull(spec);
        Spec = spec;
        _weight = new Parameter(Name + ".weight", weight);
        _bias = new Parameter(Name + ".bias", bias);
    }

    public ConvSpec Spec { get; }
    public override string Kind => "CONV";
    public override IReadOnlyList<Parameter> Parameters => [_weight, _bias];

    public override ITensor Forward(ITensor x)
    {
        var y = Backend.Conv2d(x, _weight.Value, _bias.Value, Spec);
        Remember(x);
        return y;
    }

    public override void Forward(ITensor x, ITensor y)
    {
        Backend.Conv2d(x, _weight.Value, _bias.Value, Spec, y);
        Remember(x);
    }

    public override ITensor? Backward(ITensor dy, bool needDx)
    {
        var grads = Backend.Conv2dBackward(dy, Input(), _weight.Value, Spec, needDx);
        _weight.SetGrad(grads.Dw);
        _bias.SetGrad(grads.Db);
        return grads.Dx;
    }

    public override void Backward(ITensor dy, ITensor? dx)
    {
        var (dw, db) = (_weight.GradDestination(), _bias.GradDestination());
        if (_destination is null || !ReferenceEquals(_destination.Dx, dx) || !ReferenceEquals(_destination.Dw, dw) || !ReferenceEquals(_destination.Db, db))
        {
            _destination = new ConvGradients(dx, dw, db);
        }
        Backend.Conv2dBackward(dy, Input(), _weight.Value, Spec, _destination);
    }
}
