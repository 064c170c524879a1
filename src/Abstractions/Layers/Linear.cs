namespace Lockstep.Layers;

/// <summary>FC: x [N, in] (or [N, C, H, W], in = C·H·W) → y = x·Wᵀ + b [N, out], weights [out, in], bias [out].</summary>
public sealed class Linear : Layer
{
    private readonly Parameter _weight;
    private readonly Parameter _bias;
    private LinearGradients? _destination;   // the tensors of the last destination backward, reused while they are the same

    public Linear(IBackend backend, string name, ITensor weight, ITensor bias) : base(backend, name)
    {
        _weight = new Parameter(Name + ".weight", weight);
        _bias = new Parameter(Name + ".bias", bias);
    }

    public override string Kind => "FC";
    public override IReadOnlyList<Parameter> Parameters => [_weight, _bias];

    public override ITensor Forward(ITensor x)
    {
        var y = Backend.Linear(x, _weight.Value, _bias.Value);
        Remember(x);
        return y;
    }

    public override void Forward(ITensor x, ITensor y)
    {
        Backend.Linear(x, _weight.Value, _bias.Value, y);
        Remember(x);
    }

    public override ITensor? Backward(ITensor dy, bool needDx)
    {
        var grads = Backend.LinearBackward(dy, Input(), _weight.Value, needDx);
        _weight.SetGrad(grads.Dw);
        _bias.SetGrad(grads.Db);
        return grads.Dx;
    }

    public override void Backward(ITensor dy, ITensor? dx)
    {
        var (dw, db) = (_weight.GradDestination(), _bias.GradDestination());
        if (_destination is null || !ReferenceEquals(_destination.Dx, dx) || !ReferenceEquals(_destination.Dw, dw) || !ReferenceEquals(_destination.Db, db))
        {
            _destination = new LinearGradients(dx, dw, db);
        }
        Backend.LinearBackward(dy, Input(), _weight.Value, _destination);
    }
}
